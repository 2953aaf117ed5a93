;; Test guest for spec §5: one export per kind of guest memory access, each touching the
;; address it is given. The test instantiates it for a 32-bit memory (ADDR = i32, MEM64 = "")
;; and for a 64-bit one (ADDR = i64, MEM64 = i64) by substituting the placeholders (TO64
;; widens an address to i64: `i64.extend_i32_u`, or `block (result i64)`).
;; Every export returns an i32 so that callers can tell a completed access from a trap.
(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "mach_vm_protect" (func $protect (param i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") MEM64 8 64)
  (data $seg "\01\02\03\04\05\06\07\08")
  (func (export "load8") (param $a ADDR) (result i32) (i32.load8_u (local.get $a)))
  (func (export "load32") (param $a ADDR) (result i32) (i32.load (local.get $a)))
  (func (export "load64") (param $a ADDR) (result i32) (i32.wrap_i64 (i64.load (local.get $a))))
  (func (export "loadv128") (param $a ADDR) (result i32)
    (i32x4.extract_lane 0 (v128.load (local.get $a))))
  (func (export "store8") (param $a ADDR) (result i32)
    (i32.store8 (local.get $a) (i32.const 7)) (i32.const 0))
  (func (export "store32") (param $a ADDR) (result i32)
    (i32.store (local.get $a) (i32.const 7)) (i32.const 0))
  (func (export "store64") (param $a ADDR) (result i32)
    (i64.store (local.get $a) (i64.const 7)) (i32.const 0))
  (func (export "storev128") (param $a ADDR) (result i32)
    (v128.store (local.get $a) (v128.const i64x2 1 2)) (i32.const 0))
  ;; Bulk memory: the address is the source of a copy, or the destination of a copy, fill
  ;; or init; the other side is the scratch bytes at 0x100.
  (func (export "copy_src") (param $a ADDR) (result i32)
    (memory.copy (ADDR.const 0x100) (local.get $a) (ADDR.const 4)) (i32.const 0))
  (func (export "copy_dst") (param $a ADDR) (result i32)
    (memory.copy (local.get $a) (ADDR.const 0x100) (ADDR.const 4)) (i32.const 0))
  (func (export "fill") (param $a ADDR) (result i32)
    (memory.fill (local.get $a) (i32.const 9) (ADDR.const 4)) (i32.const 0))
  (func (export "init") (param $a ADDR) (result i32)
    (memory.init $seg (local.get $a) (i32.const 0) (i32.const 4)) (i32.const 0))
  ;; A protection change takes effect for the very next instruction.
  (func (export "protect_then_store") (param $a ADDR) (result i32)
    (drop (call $protect (call $self) (TO64 (local.get $a))
                         (i64.const 1) (i32.const 0) (i32.const 1)))
    (i32.store8 (local.get $a) (i32.const 1))
    (i32.const 0))
  (func (export "grow") (param ADDR) (result ADDR) (memory.grow (local.get 0)))
)
