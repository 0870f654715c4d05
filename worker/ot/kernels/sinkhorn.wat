;; Sinkhorn–Knopp kernels in WebAssembly SIMD (float64, two lanes per vector), driven by ot/sinkhorn-wasm.ts.
;; All pointers are byte offsets into the imported memory; every array is float64. Bytes 0–1023 of the memory belong
;; to the exp kernel (its table and constants); the caller's arrays start at 1024.
;; Compiled at build time by wabt (esbuild.config.mjs, the '.wat' loader) and embedded in the bundle.
(module
  (import "env" "mem" (memory 1))

  ;; The exp kernel's constants, each in both lanes, at 512 + 16·i (after the table): loads from memory, which the
  ;; compiler folds into the arithmetic, instead of a constant materialised per use. Called once per memory.
  (func (export "init")
    (v128.store (i32.const 512) (f64x2.splat (f64.const 710))) ;; 710
    (v128.store (i32.const 528) (f64x2.splat (f64.const -746))) ;; -746
    (v128.store (i32.const 544) (f64x2.splat (f64.const 0x1.71547652b82fep+5))) ;; 32/ln2
    (v128.store (i32.const 560) (f64x2.splat (f64.const 0x1.62e42fee00000p-6))) ;; ln2/32 hi
    (v128.store (i32.const 576) (f64x2.splat (f64.const 0x1.a39ef35793c76p-38))) ;; ln2/32 lo
    (v128.store (i32.const 592) (f64x2.splat (f64.const 0x1.8p52))) ;; 1.5·2^52
    (v128.store (i32.const 608) (f64x2.splat (f64.const 0x1p-1))) ;; 1/2
    (v128.store (i32.const 624) (f64x2.splat (f64.const 0x1.5555555555555p-3))) ;; 1/6
    (v128.store (i32.const 640) (f64x2.splat (f64.const 0x1.5555555555555p-5))) ;; 1/24
    (v128.store (i32.const 656) (f64x2.splat (f64.const 0x1.1111111111111p-7))) ;; 1/120
    (v128.store (i32.const 672) (f64x2.splat (f64.const 0x1.6c16c16c16c17p-10))) ;; 1/720
    (v128.store (i32.const 688) (f64x2.splat (f64.const 0x1p-5))) ;; 1/32
    (v128.store (i32.const 704) (f64x2.splat (f64.const 0x1.80000000003ffp52))) ;; 1.5·2^52 + 1023
  )

  ;; exp(x) for two lanes, within 1 ulp of the correctly rounded value. x is clamped to [-746, 710] (exp
  ;; underflows to 0 below and overflows to +inf above; NaN stays NaN). With k = nearest(32·x / ln 2) = 32·e + j
  ;; (0 ≤ j < 32) and r = x − k·ln2/32 (Cody–Waite, two parts; |r| ≤ ln2/64):
  ;;   exp(x) = 2^e · 2^(j/32) · exp(r),  2^(j/32) = T_hi[j] + T_lo[j] (the table at address 0, written by
  ;;   sinkhorn-wasm.ts: 32 pairs of float64), exp(r) − 1 = q(r) by its Taylor series to r⁶/6! (truncation
  ;;   < 4e-18 relative), and T·exp(r) = T_hi + (T_lo + T_hi·q).
  ;; 2^e is applied as 2^(e>>1) · 2^(e − e>>1) so that results below the normal range round to subnormals as a single
  ;; multiplication would; 2^i is built by adding 1.5·2^52 + 1023 to i (i + 1023 lands in the low mantissa bits) and
  ;; shifting those bits into the exponent.
  (func $exp2 (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $r2 v128) (local $ki v128) (local $ta v128) (local $tb v128) (local $th v128)
    (local $a v128) (local $b v128) (local $e v128) (local $e1 v128)
    (local.set $x (f64x2.pmax (f64x2.pmin (local.get $x) (v128.load (i32.const 512))) (v128.load (i32.const 528))))
    (local.set $k (f64x2.nearest (f64x2.mul (local.get $x) (v128.load (i32.const 544)))))
    (local.set $r (f64x2.sub (local.get $x) (f64x2.mul (local.get $k) (v128.load (i32.const 560)))))
    (local.set $r (f64x2.sub (local.get $r) (f64x2.mul (local.get $k) (v128.load (i32.const 576)))))
    ;; j = k mod 32 from k's integer bits (k + 1.5·2^52 puts k in the low mantissa bits); the table rows, per lane
    (local.set $ki (i64x2.sub (f64x2.add (local.get $k) (v128.load (i32.const 592))) (v128.load (i32.const 592))))
    (local.set $ta (v128.load (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 0 (local.get $ki))) (i32.const 31)) (i32.const 4))))
    (local.set $tb (v128.load (i32.shl (i32.and (i32.wrap_i64 (i64x2.extract_lane 1 (local.get $ki))) (i32.const 31)) (i32.const 4))))
    (local.set $th (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ta) (local.get $tb)))
    ;; q = r + r²·((1/2 + r/6) + r²·(1/24 + r/120 + r²/720))
    (local.set $r2 (f64x2.mul (local.get $r) (local.get $r)))
    (local.set $a (f64x2.add (v128.load (i32.const 608)) (f64x2.mul (local.get $r) (v128.load (i32.const 624)))))
    (local.set $b (f64x2.add (v128.load (i32.const 640)) (f64x2.mul (local.get $r) (v128.load (i32.const 656)))))
    (local.set $b (f64x2.add (local.get $b) (f64x2.mul (local.get $r2) (v128.load (i32.const 672)))))
    (local.set $a (f64x2.add (local.get $r) (f64x2.mul (local.get $r2) (f64x2.add (local.get $a) (f64x2.mul (local.get $r2) (local.get $b))))))
    ;; T_hi + (T_lo + T_hi·q)
    (local.set $a (f64x2.add (local.get $th) (f64x2.add
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ta) (local.get $tb))
      (f64x2.mul (local.get $th) (local.get $a)))))
    (local.set $e (f64x2.floor (f64x2.mul (local.get $k) (v128.load (i32.const 688)))))
    (local.set $e1 (f64x2.floor (f64x2.mul (local.get $e) (v128.load (i32.const 608)))))
    (f64x2.mul
      (f64x2.mul (local.get $a)
        (i64x2.shl (f64x2.add (local.get $e1) (v128.load (i32.const 704))) (i32.const 52)))
      (i64x2.shl (f64x2.add (f64x2.sub (local.get $e) (local.get $e1)) (v128.load (i32.const 704))) (i32.const 52))))

  ;; The same exp for one value (the odd tail of a row).
  (func $exp1 (param $x f64) (result f64)
    (f64x2.extract_lane 0 (call $exp2 (f64x2.splat (local.get $x)))))

  ;; K rows ← exp(C rows · negInv) for `rows` rows of length m (C: the cost matrix's rows, staged), and
  ;; ktu += Σ_rows K_i· · u0 (the caller zeroes ktu before the first block). Also rmax[r] = max_j K_rj for each of
  ;; these rows and cmax_j = max(cmax_j, K_rj) (the caller zeroes cmax). Returns 0 if some C entry is not finite.
  (func (export "expRows") (param $C i32) (param $K i32) (param $ktu i32) (param $rmax i32) (param $cmax i32) (param $rows i32) (param $m i32) (param $negInv f64) (param $u0 f64) (result i32)
    (local $i i32) (local $c i32) (local $p i32) (local $q i32) (local $w i32) (local $end4 i32) (local $end i32)
    (local $s v128) (local $u v128) (local $e v128) (local $f v128) (local $x v128) (local $y v128) (local $bad v128) (local $rm v128)
    (local $z f64) (local $t f64)
    (local.set $s (f64x2.splat (local.get $negInv)))
    (local.set $u (f64x2.splat (local.get $u0)))
    (local.set $p (local.get $K))
    (local.set $c (local.get $C))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $m) (i32.const 3))))
        (local.set $end4 (i32.add (local.get $p) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 3))))
        (local.set $q (local.get $ktu))
        (local.set $w (local.get $cmax))
        (local.set $rm (v128.const i64x2 0 0))
        ;; two independent vectors per step, so that their exp chains overlap
        (block $v_done
          (loop $v
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $end4)))
            (local.set $x (v128.load (local.get $c)))
            (local.set $y (v128.load offset=16 (local.get $c)))
            (local.set $bad (v128.or (local.get $bad) (v128.or
              (f64x2.ne (f64x2.sub (local.get $x) (local.get $x)) (v128.const i64x2 0 0))
              (f64x2.ne (f64x2.sub (local.get $y) (local.get $y)) (v128.const i64x2 0 0)))))
            (local.set $e (call $exp2 (f64x2.mul (local.get $x) (local.get $s))))
            (local.set $f (call $exp2 (f64x2.mul (local.get $y) (local.get $s))))
            (v128.store (local.get $p) (local.get $e))
            (v128.store offset=16 (local.get $p) (local.get $f))
            (v128.store (local.get $q) (f64x2.add (v128.load (local.get $q)) (f64x2.mul (local.get $e) (local.get $u))))
            (v128.store offset=16 (local.get $q) (f64x2.add (v128.load offset=16 (local.get $q)) (f64x2.mul (local.get $f) (local.get $u))))
            (v128.store (local.get $w) (f64x2.pmax (v128.load (local.get $w)) (local.get $e)))
            (v128.store offset=16 (local.get $w) (f64x2.pmax (v128.load offset=16 (local.get $w)) (local.get $f)))
            (local.set $rm (f64x2.pmax (local.get $rm) (f64x2.pmax (local.get $e) (local.get $f))))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (local.set $w (i32.add (local.get $w) (i32.const 32)))
            (local.set $c (i32.add (local.get $c) (i32.const 32)))
            (br $v)))
        (local.set $t (f64.max (f64x2.extract_lane 0 (local.get $rm)) (f64x2.extract_lane 1 (local.get $rm))))
        (block $t_done
          (loop $tl
            (br_if $t_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $z (f64.load (local.get $c)))
            (if (f64.ne (f64.sub (local.get $z) (local.get $z)) (f64.const 0)) (then (local.set $bad (v128.const i64x2 -1 -1))))
            (local.set $z (call $exp1 (f64.mul (local.get $z) (local.get $negInv))))
            (f64.store (local.get $p) (local.get $z))
            (f64.store (local.get $q) (f64.add (f64.load (local.get $q)) (f64.mul (local.get $z) (local.get $u0))))
            (f64.store (local.get $w) (f64.max (f64.load (local.get $w)) (local.get $z)))
            (local.set $t (f64.max (local.get $t) (local.get $z)))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (local.set $w (i32.add (local.get $w) (i32.const 8)))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))
            (br $tl)))
        (f64.store (i32.add (local.get $rmax) (i32.shl (local.get $i) (i32.const 3))) (local.get $t))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (i32.eqz (v128.any_true (local.get $bad))))

  ;; s = K_i· · v for the row at $row (m entries), eight at a time in four two-lane accumulators
  (func $dot (param $row i32) (param $v i32) (param $m i32) (result f64)
    (local $p i32) (local $q i32) (local $end8 i32) (local $end i32) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $s f64)
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 3))))
    (local.set $end8 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -8)) (i32.const 3))))
    (local.set $p (local.get $row))
    (local.set $q (local.get $v))
    (block $d_done
      (loop $d
        (br_if $d_done (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $c0 (f64x2.add (local.get $c0) (f64x2.mul (v128.load (local.get $p)) (v128.load (local.get $q)))))
        (local.set $c1 (f64x2.add (local.get $c1) (f64x2.mul (v128.load offset=16 (local.get $p)) (v128.load offset=16 (local.get $q)))))
        (local.set $c2 (f64x2.add (local.get $c2) (f64x2.mul (v128.load offset=32 (local.get $p)) (v128.load offset=32 (local.get $q)))))
        (local.set $c3 (f64x2.add (local.get $c3) (f64x2.mul (v128.load offset=48 (local.get $p)) (v128.load offset=48 (local.get $q)))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $q (i32.add (local.get $q) (i32.const 64)))
        (br $d)))
    (local.set $c0 (f64x2.add (f64x2.add (local.get $c0) (local.get $c1)) (f64x2.add (local.get $c2) (local.get $c3))))
    (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $c0)) (f64x2.extract_lane 1 (local.get $c0))))
    (block $t_done
      (loop $t
        (br_if $t_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f64.add (local.get $s) (f64.mul (f64.load (local.get $p)) (f64.load (local.get $q)))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $t)))
    (local.get $s))

  ;; ktu += w · K_i· for the row at $row
  (func $axpy (param $row i32) (param $ktu i32) (param $m i32) (param $w f64)
    (local $p i32) (local $q i32) (local $end4 i32) (local $end i32) (local $wv v128)
    (local.set $wv (f64x2.splat (local.get $w)))
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 3))))
    (local.set $end4 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 3))))
    (local.set $p (local.get $row))
    (local.set $q (local.get $ktu))
    (block $x_done
      (loop $x
        (br_if $x_done (i32.ge_u (local.get $p) (local.get $end4)))
        (v128.store (local.get $q) (f64x2.add (v128.load (local.get $q)) (f64x2.mul (v128.load (local.get $p)) (local.get $wv))))
        (v128.store offset=16 (local.get $q) (f64x2.add (v128.load offset=16 (local.get $q)) (f64x2.mul (v128.load offset=16 (local.get $p)) (local.get $wv))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (local.set $q (i32.add (local.get $q) (i32.const 32)))
        (br $x)))
    (block $y_done
      (loop $y
        (br_if $y_done (i32.ge_u (local.get $p) (local.get $end)))
        (f64.store (local.get $q) (f64.add (f64.load (local.get $q)) (f64.mul (f64.load (local.get $p)) (local.get $w))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $y))))

  ;; Dot products of four consecutive rows (at $row, stride $stride bytes) with v, stored to out[0..3]: four
  ;; streams from memory at once (one stream alone does not reach the memory bandwidth).
  (func $dot4 (param $row i32) (param $stride i32) (param $v i32) (param $m i32) (param $out i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $q i32) (local $end4 i32) (local $end i32)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128) (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (local $x v128) (local $y v128) (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $vj f64)
    (local.set $p0 (local.get $row))
    (local.set $p1 (i32.add (local.get $p0) (local.get $stride)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 3))))
    (local.set $end4 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 3))))
    (local.set $q (local.get $v))
    (block $d_done
      (loop $d
        (br_if $d_done (i32.ge_u (local.get $p0) (local.get $end4)))
        (local.set $x (v128.load (local.get $q)))
        (local.set $y (v128.load offset=16 (local.get $q)))
        (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (v128.load (local.get $p0)) (local.get $x))))
        (local.set $b0 (f64x2.add (local.get $b0) (f64x2.mul (v128.load (local.get $p1)) (local.get $x))))
        (local.set $c0 (f64x2.add (local.get $c0) (f64x2.mul (v128.load (local.get $p2)) (local.get $x))))
        (local.set $d0 (f64x2.add (local.get $d0) (f64x2.mul (v128.load (local.get $p3)) (local.get $x))))
        (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (v128.load offset=16 (local.get $p0)) (local.get $y))))
        (local.set $b1 (f64x2.add (local.get $b1) (f64x2.mul (v128.load offset=16 (local.get $p1)) (local.get $y))))
        (local.set $c1 (f64x2.add (local.get $c1) (f64x2.mul (v128.load offset=16 (local.get $p2)) (local.get $y))))
        (local.set $d1 (f64x2.add (local.get $d1) (f64x2.mul (v128.load offset=16 (local.get $p3)) (local.get $y))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 32)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 32)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 32)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 32)))
        (local.set $q (i32.add (local.get $q) (i32.const 32)))
        (br $d)))
    (local.set $a0 (f64x2.add (local.get $a0) (local.get $a1)))
    (local.set $b0 (f64x2.add (local.get $b0) (local.get $b1)))
    (local.set $c0 (f64x2.add (local.get $c0) (local.get $c1)))
    (local.set $d0 (f64x2.add (local.get $d0) (local.get $d1)))
    (local.set $s0 (f64.add (f64x2.extract_lane 0 (local.get $a0)) (f64x2.extract_lane 1 (local.get $a0))))
    (local.set $s1 (f64.add (f64x2.extract_lane 0 (local.get $b0)) (f64x2.extract_lane 1 (local.get $b0))))
    (local.set $s2 (f64.add (f64x2.extract_lane 0 (local.get $c0)) (f64x2.extract_lane 1 (local.get $c0))))
    (local.set $s3 (f64.add (f64x2.extract_lane 0 (local.get $d0)) (f64x2.extract_lane 1 (local.get $d0))))
    (block $t_done
      (loop $t
        (br_if $t_done (i32.ge_u (local.get $p0) (local.get $end)))
        (local.set $vj (f64.load (local.get $q)))
        (local.set $s0 (f64.add (local.get $s0) (f64.mul (f64.load (local.get $p0)) (local.get $vj))))
        (local.set $s1 (f64.add (local.get $s1) (f64.mul (f64.load (local.get $p1)) (local.get $vj))))
        (local.set $s2 (f64.add (local.get $s2) (f64.mul (f64.load (local.get $p2)) (local.get $vj))))
        (local.set $s3 (f64.add (local.get $s3) (f64.mul (f64.load (local.get $p3)) (local.get $vj))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 8)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 8)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 8)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 8)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $t)))
    (f64.store (local.get $out) (local.get $s0))
    (f64.store offset=8 (local.get $out) (local.get $s1))
    (f64.store offset=16 (local.get $out) (local.get $s2))
    (f64.store offset=24 (local.get $out) (local.get $s3)))

  ;; ktu = (((ktu + w0 K_0·) + w1 K_1·) + w2 K_2·) + w3 K_3· for four consecutive rows: the additions of four
  ;; axpy calls, in their order, with one pass over ktu
  (func $axpy4 (param $row i32) (param $stride i32) (param $ktu i32) (param $m i32) (param $w0 f64) (param $w1 f64) (param $w2 f64) (param $w3 f64)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $q i32) (local $end2 i32) (local $end i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $v0 (f64x2.splat (local.get $w0)))
    (local.set $v1 (f64x2.splat (local.get $w1)))
    (local.set $v2 (f64x2.splat (local.get $w2)))
    (local.set $v3 (f64x2.splat (local.get $w3)))
    (local.set $p0 (local.get $row))
    (local.set $p1 (i32.add (local.get $p0) (local.get $stride)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 3))))
    (local.set $end2 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -2)) (i32.const 3))))
    (local.set $q (local.get $ktu))
    (block $x_done
      (loop $xl
        (br_if $x_done (i32.ge_u (local.get $p0) (local.get $end2)))
        (v128.store (local.get $q)
          (f64x2.add (f64x2.add (f64x2.add (f64x2.add (v128.load (local.get $q))
            (f64x2.mul (v128.load (local.get $p0)) (local.get $v0)))
            (f64x2.mul (v128.load (local.get $p1)) (local.get $v1)))
            (f64x2.mul (v128.load (local.get $p2)) (local.get $v2)))
            (f64x2.mul (v128.load (local.get $p3)) (local.get $v3))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br $xl)))
    (if (i32.lt_u (local.get $p0) (local.get $end))
      (then
        (f64.store (local.get $q)
          (f64.add (f64.add (f64.add (f64.add (f64.load (local.get $q))
            (f64.mul (f64.load (local.get $p0)) (local.get $w0)))
            (f64.mul (f64.load (local.get $p1)) (local.get $w1)))
            (f64.mul (f64.load (local.get $p2)) (local.get $w2)))
            (f64.mul (f64.load (local.get $p3)) (local.get $w3)))))))

  ;; u_i = a_i / s_i for row i (s at $s); returns whether the row contributes to ktu (u_i finite and not 0) and
  ;; clears *ok if u_i is not finite
  (func $scale (param $a i32) (param $u i32) (param $i i32) (param $s f64) (param $ok i32) (result i32)
    (local $ui f64)
    (local.set $ui (f64.div (f64.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 3)))) (local.get $s)))
    (f64.store (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))) (local.get $ui))
    (if (f64.ne (f64.sub (local.get $ui) (local.get $ui)) (f64.const 0)) (then (i32.store (local.get $ok) (i32.const 0))))
    (i32.and (f64.eq (f64.sub (local.get $ui) (local.get $ui)) (f64.const 0)) (f64.ne (local.get $ui) (f64.const 0))))

  ;; One fused sweep over K (n×m): s_i = Σ_j K_ij v_j, u_i = a_i / s_i, then ktu_j = Σ_i K_ij u_i (ktu zeroed
  ;; first; rows whose u_i is 0 or not finite add nothing; rows added in order). Rows go four at a time ($dot4,
  ;; then $axpy4 while the four rows are in cache). $tmp: 48 bytes of scratch. Returns 0 if some u_i is not
  ;; finite, else 1.
  (func (export "sweep") (param $K i32) (param $a i32) (param $v i32) (param $u i32) (param $ktu i32) (param $n i32) (param $m i32) (param $tmp i32) (result i32)
    (local $i i32) (local $row i32) (local $stride i32) (local $ok i32) (local $n4 i32) (local $use i32) (local $all i32) (local $r i32)
    (local.set $ok (i32.add (local.get $tmp) (i32.const 32)))
    (i32.store (local.get $ok) (i32.const 1))
    (local.set $stride (i32.shl (local.get $m) (i32.const 3)))
    (memory.fill (local.get $ktu) (i32.const 0) (local.get $stride))
    (local.set $row (local.get $K))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $n4)))
        (call $dot4 (local.get $row) (local.get $stride) (local.get $v) (local.get $m) (local.get $tmp))
        (local.set $all (i32.const 1))
        (local.set $r (i32.const 0))
        (block $s_done
          (loop $sl
            (br_if $s_done (i32.ge_u (local.get $r) (i32.const 4)))
            (local.set $use (call $scale (local.get $a) (local.get $u) (i32.add (local.get $i) (local.get $r))
              (f64.load (i32.add (local.get $tmp) (i32.shl (local.get $r) (i32.const 3)))) (local.get $ok)))
            (local.set $all (i32.and (local.get $all) (local.get $use)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $sl)))
        (if (local.get $all)
          (then
            (call $axpy4 (local.get $row) (local.get $stride) (local.get $ktu) (local.get $m)
              (f64.load (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))
              (f64.load offset=8 (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))
              (f64.load offset=16 (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))
              (f64.load offset=24 (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))))
          (else
            (local.set $r (i32.const 0))
            (block $y_done
              (loop $yl
                (br_if $y_done (i32.ge_u (local.get $r) (i32.const 4)))
                (call $axpyIf (i32.add (local.get $row) (i32.mul (local.get $r) (local.get $stride))) (local.get $ktu) (local.get $m)
                  (f64.load (i32.add (local.get $u) (i32.shl (i32.add (local.get $i) (local.get $r)) (i32.const 3)))))
                (local.set $r (i32.add (local.get $r) (i32.const 1)))
                (br $yl)))))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $stride) (i32.const 2))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows)))
    ;; the last n mod 4 rows one by one
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (call $scale (local.get $a) (local.get $u) (local.get $i) (call $dot (local.get $row) (local.get $v) (local.get $m)) (local.get $ok)))
        (call $axpyIf (local.get $row) (local.get $ktu) (local.get $m) (f64.load (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3)))))
        (local.set $row (i32.add (local.get $row) (local.get $stride)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (i32.load (local.get $ok)))

  ;; ktu += w · K_i· if w is finite and not 0 (a row that contributes)
  (func $axpyIf (param $row i32) (param $ktu i32) (param $m i32) (param $w f64)
    (if (i32.and (f64.eq (f64.sub (local.get $w) (local.get $w)) (f64.const 0)) (f64.ne (local.get $w) (f64.const 0)))
      (then (call $axpy (local.get $row) (local.get $ktu) (local.get $m) (local.get $w)))))

  ;; Rows [i0, i1) of plan = diag(u) K diag(v), written to P (row i0 first); each row's sum goes to rs[i],
  ;; colSum += the row; returns Σ plan_ij · C_ij where C holds the same rows of the cost matrix (row i0 first).
  (func (export "finishRows") (param $K i32) (param $C i32) (param $P i32) (param $u i32) (param $v i32) (param $rs i32) (param $col i32) (param $i0 i32) (param $i1 i32) (param $m i32) (result f64)
    (local $i i32) (local $p i32) (local $c i32) (local $o i32) (local $q i32) (local $w i32) (local $end2 i32) (local $end i32)
    (local $ui v128) (local $pl v128) (local $rsum v128) (local $cost v128) (local $x f64) (local $r f64) (local $t f64)
    (local.set $i (local.get $i0))
    (local.set $c (local.get $C))
    (local.set $o (local.get $P))
    (local.set $p (i32.add (local.get $K) (i32.shl (i32.mul (local.get $i0) (local.get $m)) (i32.const 3))))
    (local.set $cost (v128.const i64x2 0 0))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $i1)))
        (local.set $ui (f64x2.splat (f64.load (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $m) (i32.const 3))))
        (local.set $end2 (i32.add (local.get $p) (i32.shl (i32.and (local.get $m) (i32.const -2)) (i32.const 3))))
        (local.set $q (local.get $v))
        (local.set $w (local.get $col))
        (local.set $rsum (v128.const i64x2 0 0))
        (block $v_done
          (loop $vl
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $end2)))
            (local.set $pl (f64x2.mul (f64x2.mul (local.get $ui) (v128.load (local.get $p))) (v128.load (local.get $q))))
            (v128.store (local.get $o) (local.get $pl))
            (local.set $rsum (f64x2.add (local.get $rsum) (local.get $pl)))
            (v128.store (local.get $w) (f64x2.add (v128.load (local.get $w)) (local.get $pl)))
            (local.set $cost (f64x2.add (local.get $cost) (f64x2.mul (local.get $pl) (v128.load (local.get $c)))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (local.set $w (i32.add (local.get $w) (i32.const 16)))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $vl)))
        (local.set $r (f64.add (f64x2.extract_lane 0 (local.get $rsum)) (f64x2.extract_lane 1 (local.get $rsum))))
        (if (i32.lt_u (local.get $p) (local.get $end))
          (then
            (local.set $x (f64.mul (f64.mul (f64x2.extract_lane 0 (local.get $ui)) (f64.load (local.get $p))) (f64.load (local.get $q))))
            (f64.store (local.get $o) (local.get $x))
            (local.set $r (f64.add (local.get $r) (local.get $x)))
            (f64.store (local.get $w) (f64.add (f64.load (local.get $w)) (local.get $x)))
            (local.set $t (f64.add (local.get $t) (f64.mul (local.get $x) (f64.load (local.get $c)))))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $o (i32.add (local.get $o) (i32.const 8)))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))))
        (f64.store (i32.add (local.get $rs) (i32.shl (local.get $i) (i32.const 3))) (local.get $r))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (f64.add (local.get $t) (f64.add (f64x2.extract_lane 0 (local.get $cost)) (f64x2.extract_lane 1 (local.get $cost)))))
)
