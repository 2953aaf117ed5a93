(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 6000)
  (func (export "main") (result i32) (local $i i32)
    (block $done (loop $l
      (br_if $done (call $protect (call $self)
        (i32.add (i32.const 0x100000) (i32.mul (local.get $i) (i32.const 0x2000)))
        (i32.const 0x1000) (i32.const 0) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    (call $protect (call $self) (i32.const 0x100000)
      (i32.mul (local.get $i) (i32.const 0x2000)) (i32.const 0) (i32.const 3))))
