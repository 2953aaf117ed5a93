;; A WASI command that is also a Mach task: it greets, prints its argv and environment, and
;; then does what its first argument says. Its buffers come from vm_allocate.
;;
;;   machvm run wat/wasi_hello.wat a b            prints the greeting, "arg: ..." lines
;;   machvm run --env K=V wat/wasi_hello.wat      ... and "env: K=V"
;;   machvm run --dir DIR wat/wasi_hello.wat cat FILE   ... and FILE's bytes (DIR preopened)
;;   machvm run wat/wasi_hello.wat exit 7         ... and exits with status 7 (proc_exit)
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "mach" "mach_task_self" (func $task_self (result i32)))
  (import "mach" "vm_allocate" (func $vm_allocate (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; Scratch words: 0x00 iovec, 0x08 nwritten, 0x10 argc, 0x14 argv size, 0x18 envc,
  ;; 0x1c environ size, 0x20 opened fd, 0x24 nread, 0x28 read iovec, 0x40 vm_allocate address.
  (data (i32.const 0x100) "hello from a wasi guest\n")
  (data (i32.const 0x120) "arg: ")
  (data (i32.const 0x128) "env: ")
  (data (i32.const 0x130) "\n")
  (data (i32.const 0x134) "cat")
  (data (i32.const 0x138) "exit")
  (data (i32.const 0x140) "cannot open the file\n")

  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0x00) (local.get $ptr))
    (i32.store (i32.const 0x04) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0x00) (i32.const 1) (i32.const 0x08))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Prints `prefix`, the NUL-terminated string at $s, and a newline.
  (func $print_line (param $prefix i32) (param $s i32)
    (call $print (local.get $prefix) (i32.const 5))
    (call $print (local.get $s) (call $strlen (local.get $s)))
    (call $print (i32.const 0x130) (i32.const 1)))

  ;; The NUL-terminated string at $a equals the $len bytes at $b.
  (func $streq (param $a i32) (param $b i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.ne (call $strlen (local.get $a)) (local.get $len)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; The decimal number at $p (NUL-terminated).
  (func $atoi (param $p i32) (result i32)
    (local $n i32) (local $c i32)
    (block $done
      (loop $next
        (local.set $c (i32.load8_u (local.get $p)))
        ;; not a digit (below '0' wraps around to a large value)
        (br_if $done (i32.gt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 9)))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                               (i32.sub (local.get $c) (i32.const 48))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func (export "_start")
    (local $buf i32) (local $n i32) (local $i i32) (local $cmd i32) (local $arg i32)
    (call $print (i32.const 0x100) (i32.const 24))
    ;; 64 KiB for argv, environ and file data: the memory grows to hold it.
    (if (call $vm_allocate (call $task_self) (i32.const 0x40) (i32.const 0x10000)
              (i32.const 1 (; VM_FLAGS_ANYWHERE ;)))
      (then unreachable))
    (local.set $buf (i32.load (i32.const 0x40)))

    ;; argv: pointers at buf, strings at buf + 0x1000
    (drop (call $args_sizes_get (i32.const 0x10) (i32.const 0x14)))
    (drop (call $args_get (local.get $buf) (i32.add (local.get $buf) (i32.const 0x1000))))
    (local.set $n (i32.load (i32.const 0x10)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $print_line (i32.const 0x120)
          (i32.load (i32.add (local.get $buf) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))

    ;; environ: pointers at buf + 0x2000, strings at buf + 0x3000
    (drop (call $environ_sizes_get (i32.const 0x18) (i32.const 0x1c)))
    (drop (call $environ_get (i32.add (local.get $buf) (i32.const 0x2000))
                             (i32.add (local.get $buf) (i32.const 0x3000))))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0x18))))
        (call $print_line (i32.const 0x128)
          (i32.load (i32.add (i32.add (local.get $buf) (i32.const 0x2000))
                             (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))

    ;; Commands: `cat FILE`, `exit N`.
    (if (i32.lt_u (local.get $n) (i32.const 3)) (then (return)))
    (local.set $cmd (i32.load (i32.add (local.get $buf) (i32.const 4))))
    (local.set $arg (i32.load (i32.add (local.get $buf) (i32.const 8))))
    (if (call $streq (local.get $cmd) (i32.const 0x138) (i32.const 4))
      (then (call $proc_exit (call $atoi (local.get $arg)))))
    (if (call $streq (local.get $cmd) (i32.const 0x134) (i32.const 3))
      (then
        ;; Relative to the first preopened directory (fd 3), for reading.
        (if (call $path_open (i32.const 3) (i32.const 0) (local.get $arg)
                  (call $strlen (local.get $arg)) (i32.const 0)
                  (i64.const 2 (; FD_READ ;)) (i64.const 0) (i32.const 0) (i32.const 0x20))
          (then
            (call $print (i32.const 0x140) (i32.const 21))
            (call $proc_exit (i32.const 2))))
        (i32.store (i32.const 0x28) (i32.add (local.get $buf) (i32.const 0x8000)))
        (i32.store (i32.const 0x2c) (i32.const 0x8000))
        (drop (call $fd_read (i32.load (i32.const 0x20)) (i32.const 0x28) (i32.const 1)
                             (i32.const 0x24)))
        (call $print (i32.add (local.get $buf) (i32.const 0x8000)) (i32.load (i32.const 0x24))))))
)
