;; Network simplex pricing kernel in WebAssembly SIMD (float64, two lanes per vector), driven by ot/emd.ts through
;; ot/pricing-wasm.ts. Pointers are byte offsets into the imported memory.
;; Compiled at build time by wabt (the '.wat' loader) and embedded in the bundle.
(module
  (import "env" "mem" (memory 1))

  ;; min over k < len of c[k] − p[k] (a row segment of the cost matrix minus the column potentials); +inf if len = 0
  (func (export "segMin") (param $c i32) (param $p i32) (param $len i32) (result f64)
    (local $end8 i32) (local $end i32) (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128) (local $s f64)
    (local.set $end (i32.add (local.get $c) (i32.shl (local.get $len) (i32.const 3))))
    (local.set $end8 (i32.add (local.get $c) (i32.shl (i32.and (local.get $len) (i32.const -8)) (i32.const 3))))
    (local.set $m0 (f64x2.splat (f64.const inf)))
    (local.set $m1 (local.get $m0))
    (local.set $m2 (local.get $m0))
    (local.set $m3 (local.get $m0))
    (block $done8
      (loop $l8
        (br_if $done8 (i32.ge_u (local.get $c) (local.get $end8)))
        (local.set $m0 (f64x2.min (local.get $m0) (f64x2.sub (v128.load (local.get $c)) (v128.load (local.get $p)))))
        (local.set $m1 (f64x2.min (local.get $m1) (f64x2.sub (v128.load offset=16 (local.get $c)) (v128.load offset=16 (local.get $p)))))
        (local.set $m2 (f64x2.min (local.get $m2) (f64x2.sub (v128.load offset=32 (local.get $c)) (v128.load offset=32 (local.get $p)))))
        (local.set $m3 (f64x2.min (local.get $m3) (f64x2.sub (v128.load offset=48 (local.get $c)) (v128.load offset=48 (local.get $p)))))
        (local.set $c (i32.add (local.get $c) (i32.const 64)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $l8)))
    (local.set $m0 (f64x2.min (f64x2.min (local.get $m0) (local.get $m1)) (f64x2.min (local.get $m2) (local.get $m3))))
    (local.set $s (f64.min (f64x2.extract_lane 0 (local.get $m0)) (f64x2.extract_lane 1 (local.get $m0))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $c) (local.get $end)))
        (local.set $s (f64.min (local.get $s) (f64.sub (f64.load (local.get $c)) (f64.load (local.get $p)))))
        (local.set $c (i32.add (local.get $c) (i32.const 8)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $l)))
    (local.get $s))
;; the first k < len with c[k] − p[k] = low (len if none)
  (func (export "segFind") (param $c i32) (param $p i32) (param $len i32) (param $low f64) (result i32)
    (local $k i32) (local $end2 i32) (local $l v128)
    (local.set $l (f64x2.splat (local.get $low)))
    (local.set $end2 (i32.and (local.get $len) (i32.const -2)))
    (block $done2
      (loop $l2
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end2)))
        (if (v128.any_true (f64x2.eq (local.get $l) (f64x2.sub (v128.load (local.get $c)) (v128.load (local.get $p)))))
          (then
            (if (f64.eq (local.get $low) (f64.sub (f64.load (local.get $c)) (f64.load (local.get $p))))
              (then (return (local.get $k))))
            (return (i32.add (local.get $k) (i32.const 1)))))
        (local.set $k (i32.add (local.get $k) (i32.const 2)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l2)))
    (if (i32.lt_u (local.get $k) (local.get $len))
      (then
        (if (f64.eq (local.get $low) (f64.sub (f64.load (local.get $c)) (f64.load (local.get $p))))
          (then (return (local.get $k))))))
    (local.get $len))
)
