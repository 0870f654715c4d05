;; The shortest-augmenting-path search of ot/lap.ts in WebAssembly SIMD (float64, two lanes per vector), driven
;; through ot/lap-wasm.ts. Pointers are byte offsets into the imported memory; `len` is the padded (even) number of
;; columns. Distances of columns already scanned are NaN: a comparison with NaN is false, so they are neither
;; lowered nor chosen (f64x2.lt, and f64x2.pmin(a, b) = b < a ? b : a, whose NaN b never wins).
;; Compiled at build time by wabt (the '.wat' loader) and embedded in the bundle.
(module
  (import "env" "mem" (memory 1))

  ;; the index of the first d[k] == best for k in [from, len) (byte offsets from d; -1 if none)
  (func $first (param $d i32) (param $from i32) (param $len i32) (param $best f64) (result i32)
    (local $p i32) (local $end i32) (local $b v128)
    (local.set $p (i32.add (local.get $d) (local.get $from)))
    (local.set $end (i32.add (local.get $d) (i32.shl (local.get $len) (i32.const 3))))
    (local.set $b (f64x2.splat (local.get $best)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (if (v128.any_true (f64x2.eq (v128.load (local.get $p)) (local.get $b)))
          (then
            (if (f64.ne (f64.load (local.get $p)) (local.get $best))
              (then (local.set $p (i32.add (local.get $p) (i32.const 8)))))
            (return (i32.shr_u (i32.sub (local.get $p) (local.get $d)) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l)))
    (i32.const -1))

  ;; the first k < len with d[k] minimal over the non-NaN entries (-1 if there is none)
  (func (export "argmin") (param $d i32) (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $m v128) (local $best f64)
    (local.set $p (local.get $d))
    (local.set $end (i32.add (local.get $d) (i32.shl (local.get $len) (i32.const 3))))
    (local.set $m (f64x2.splat (f64.const inf)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $m (f64x2.pmin (local.get $m) (v128.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l)))
    (local.set $best (f64.min (f64x2.extract_lane 0 (local.get $m)) (f64x2.extract_lane 1 (local.get $m))))
    (if (f64.eq (local.get $best) (f64.const inf)) (then (return (i32.const -1))))
    (call $first (local.get $d) (i32.const 0) (local.get $len) (local.get $best)))

  ;; Scans row i (its costs at c): for every column k, r = (c[k] − v[k]) − h; where r < d[k], d[k] = r and pred[k] = i
  ;; (int64 lanes). Returns the first k with the new d[k] minimal over the non-NaN entries (-1 if none): the minimum
  ;; is taken per block of 16 vectors, the first block that lowers it is remembered and searched at the end.
  (func (export "scan") (param $c i32) (param $v i32) (param $d i32) (param $pred i32) (param $len i32) (param $h f64) (param $i i32) (result i32)
    (local $d0 i32) (local $end i32) (local $blockStart i32) (local $blockEnd i32) (local $hv v128) (local $iv v128)
    (local $r v128) (local $old v128) (local $m v128) (local $bm v128) (local $best f64) (local $x f64) (local $at i32)
    (local.set $d0 (local.get $d))
    (local.set $end (i32.add (local.get $d) (i32.shl (local.get $len) (i32.const 3))))
    (local.set $hv (f64x2.splat (local.get $h)))
    (local.set $iv (i64x2.splat (i64.extend_i32_u (local.get $i))))
    (local.set $best (f64.const inf))
    (local.set $at (i32.const -1))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $blockStart (local.get $d))
        (local.set $blockEnd (i32.add (local.get $d) (i32.const 256)))
        (if (i32.gt_u (local.get $blockEnd) (local.get $end)) (then (local.set $blockEnd (local.get $end))))
        (local.set $bm (f64x2.splat (f64.const inf)))
        (loop $l
          (local.set $r (f64x2.sub (f64x2.sub (v128.load (local.get $c)) (v128.load (local.get $v))) (local.get $hv)))
          (local.set $old (v128.load (local.get $d)))
          (local.set $m (f64x2.lt (local.get $r) (local.get $old)))
          (if (v128.any_true (local.get $m))
            (then
              (local.set $old (v128.bitselect (local.get $r) (local.get $old) (local.get $m)))
              (v128.store (local.get $d) (local.get $old))
              (v128.store (local.get $pred) (v128.bitselect (local.get $iv) (v128.load (local.get $pred)) (local.get $m)))))
          (local.set $bm (f64x2.pmin (local.get $bm) (local.get $old)))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (local.set $v (i32.add (local.get $v) (i32.const 16)))
          (local.set $d (i32.add (local.get $d) (i32.const 16)))
          (local.set $pred (i32.add (local.get $pred) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $d) (local.get $blockEnd))))
        (local.set $x (f64.min (f64x2.extract_lane 0 (local.get $bm)) (f64x2.extract_lane 1 (local.get $bm))))
        (if (f64.lt (local.get $x) (local.get $best))
          (then
            (local.set $best (local.get $x))
            (local.set $at (i32.sub (local.get $blockStart) (local.get $d0)))))
        (br $blocks)))
    (if (i32.lt_s (local.get $at) (i32.const 0)) (then (return (i32.const -1))))
    (call $first (local.get $d0) (local.get $at) (local.get $len) (local.get $best)))
)
