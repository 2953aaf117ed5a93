;; A runaway guest: `_start` loops forever, as a guest with a bug would. machvm stops it with
;; --fuel N (exit status 4) or --timeout DURATION (exit status 5).
;;
;;   machvm run --fuel 1000000 wat/spin.wat
;;   machvm run --timeout 500ms wat/spin.wat
(module
  (memory (export "memory") 1)
  (func $spin
    (local $i i32)
    (loop $forever
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $forever)))
  (func (export "_start") (call $spin))
)
