;; Sinkhorn–Knopp kernels with K stored in float32 (half the memory traffic of kernels/sinkhorn.wat), everything
;; else in float64: the scalings u, v, the sums K·v and Kᵀ·u, the plan and the cost. Driven by ot/sinkhorn-wasm.ts.
;; K32_ij = float32(exp(−C_ij / reg)) is used consistently everywhere (the sums, the plan), so the solve is an exact
;; float64 Sinkhorn–Knopp solve for the cost −reg·log K32, which is within reg·2^-24 of C (relative 6e-8 in K).
;; Only for −87 ≤ −C/reg ≤ 88, where every K entry is a normal float32; the caller checks the returned range.
;; All pointers are byte offsets into the imported memory; rows of K are m float32 (4m bytes), all else float64.
;; Compiled at build time by wabt (esbuild.config.mjs, the '.wat' loader) and embedded in the bundle.
(module
  (import "env" "mem" (memory 1))

  ;; The exp kernel's constants, each in both lanes, at 736 + 16·i (bytes 0–735 belong to kernels/sinkhorn.wat's
  ;; table and constants): loads from memory fold into the arithmetic, a v128.const is materialised per use.
  ;; Called once per memory.
  (func (export "init32")
    (v128.store (i32.const 736) (f64x2.splat (f64.const 0x1.71547652b82fep+0))) ;; 1/ln2
    (v128.store (i32.const 752) (f64x2.splat (f64.const 0x1.62e42fefa39efp-1))) ;; ln2
    (v128.store (i32.const 768) (f64x2.splat (f64.const 1))) ;; 1
    (v128.store (i32.const 784) (f64x2.splat (f64.const 0x1p-1))) ;; 1/2
    (v128.store (i32.const 800) (f64x2.splat (f64.const 0x1.5555555555555p-3))) ;; 1/6
    (v128.store (i32.const 816) (f64x2.splat (f64.const 0x1.5555555555555p-5))) ;; 1/24
    (v128.store (i32.const 832) (f64x2.splat (f64.const 0x1.1111111111111p-7))) ;; 1/120
    (v128.store (i32.const 848) (f64x2.splat (f64.const 0x1.6c16c16c16c17p-10))) ;; 1/720
    (v128.store (i32.const 864) (f64x2.splat (f64.const 0x1.a01a01a01a01ap-13))) ;; 1/5040
    (v128.store (i32.const 880) (f64x2.splat (f64.const 0x1.80000000003ffp52))) ;; 1.5·2^52 + 1023
  )

  ;; exp(x) for two lanes, relative error below 6e-9 for |x| ≤ 88 (enough for a float32 result within 1 ulp of the
  ;; correctly rounded one): k = nearest(x / ln2), r = x − k·ln2 (|r| ≤ 0.35, error ≤ 1e-14), exp(r) by its Taylor
  ;; polynomial to r⁷/7! (truncation ≤ 5.1e-9, evaluated by Estrin's scheme), times 2^k built in the exponent bits
  ;; (k + 1023 in the low mantissa bits of k + 1.5·2^52 + 1023, shifted up by 52). No clamping: lanes outside
  ;; [−87, 88] give garbage, and the caller discards the whole result when any entry is outside.
  (func $exp2 (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $r2 v128)
    (local.set $k (f64x2.nearest (f64x2.mul (local.get $x) (v128.load (i32.const 736)))))
    (local.set $r (f64x2.relaxed_nmadd (local.get $k) (v128.load (i32.const 752)) (local.get $x)))
    (local.set $r2 (f64x2.mul (local.get $r) (local.get $r)))
    ;; (1 + r + r²·(1/2 + r/6)) + r⁴·((1/24 + r/120) + r²·(1/720 + r/5040))
    (f64x2.mul
      (f64x2.relaxed_madd (f64x2.mul (local.get $r2) (local.get $r2))
        (f64x2.relaxed_madd (local.get $r2)
          (f64x2.relaxed_madd (local.get $r) (v128.load (i32.const 864)) (v128.load (i32.const 848)))
          (f64x2.relaxed_madd (local.get $r) (v128.load (i32.const 832)) (v128.load (i32.const 816))))
        (f64x2.relaxed_madd (local.get $r2)
          (f64x2.relaxed_madd (local.get $r) (v128.load (i32.const 800)) (v128.load (i32.const 784)))
          (f64x2.add (v128.load (i32.const 768)) (local.get $r))))
      (i64x2.shl (f64x2.add (local.get $k) (v128.load (i32.const 880))) (i32.const 52))))

  ;; The same exp for one value, rounded to float32 (the tail of a row).
  (func $exp1 (param $x f64) (result f32)
    (f32.demote_f64 (f64x2.extract_lane 0 (call $exp2 (f64x2.splat (local.get $x))))))

  ;; K rows ← float32(exp(C rows · negInv)) for `rows` rows of length m (C: the cost matrix's rows, staged; K rows
  ;; at 4m bytes each), colSum_j += Σ_rows K_ij (float64; the caller zeroes it). range[0] = min and range[1] = max
  ;; of C·negInv so far (the caller starts them at +inf / −inf; NaN if an entry was NaN).
  (func (export "expRows32") (param $C i32) (param $K i32) (param $col i32) (param $range i32) (param $rows i32) (param $m i32) (param $negInv f64)
    (local $i i32) (local $c i32) (local $p i32) (local $q i32) (local $end4 i32) (local $end i32)
    (local $s v128) (local $x v128) (local $y v128) (local $e v128) (local $lo v128) (local $hi v128) (local $z f64) (local $k f32)
    (local.set $s (f64x2.splat (local.get $negInv)))
    (local.set $lo (f64x2.splat (f64.load (local.get $range))))
    (local.set $hi (f64x2.splat (f64.load offset=8 (local.get $range))))
    (local.set $p (local.get $K))
    (local.set $c (local.get $C))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $m) (i32.const 2))))
        (local.set $end4 (i32.add (local.get $p) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 2))))
        (local.set $q (local.get $col))
        ;; four entries per step: two exp chains in flight, one 16-byte store of four float32
        (block $v_done
          (loop $v
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $end4)))
            (local.set $x (f64x2.mul (v128.load (local.get $c)) (local.get $s)))
            (local.set $y (f64x2.mul (v128.load offset=16 (local.get $c)) (local.get $s)))
            (local.set $lo (f64x2.min (local.get $lo) (f64x2.min (local.get $x) (local.get $y))))
            (local.set $hi (f64x2.max (local.get $hi) (f64x2.max (local.get $x) (local.get $y))))
            (local.set $e (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero (call $exp2 (local.get $x)))
              (f32x4.demote_f64x2_zero (call $exp2 (local.get $y)))))
            (v128.store (local.get $p) (local.get $e))
            (v128.store (local.get $q) (f64x2.add (v128.load (local.get $q)) (f64x2.promote_low_f32x4 (local.get $e))))
            (v128.store offset=16 (local.get $q) (f64x2.add (v128.load offset=16 (local.get $q))
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $e) (local.get $e)))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (local.set $c (i32.add (local.get $c) (i32.const 32)))
            (br $v)))
        (block $t_done
          (loop $tl
            (br_if $t_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $z (f64.mul (f64.load (local.get $c)) (local.get $negInv)))
            (local.set $lo (f64x2.min (local.get $lo) (f64x2.splat (local.get $z))))
            (local.set $hi (f64x2.max (local.get $hi) (f64x2.splat (local.get $z))))
            (local.set $k (call $exp1 (local.get $z)))
            (f32.store (local.get $p) (local.get $k))
            (f64.store (local.get $q) (f64.add (f64.load (local.get $q)) (f64.promote_f32 (local.get $k))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))
            (br $tl)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (f64.store (local.get $range) (f64.min (f64x2.extract_lane 0 (local.get $lo)) (f64x2.extract_lane 1 (local.get $lo))))
    (f64.store offset=8 (local.get $range) (f64.max (f64x2.extract_lane 0 (local.get $hi)) (f64x2.extract_lane 1 (local.get $hi)))))

  ;; exp kernel alone, for tests: out_k = float32(exp(x_k)) for k < len (x float64, out float32)
  (func (export "exp32") (param $x i32) (param $out i32) (param $len i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (i32.and (local.get $len) (i32.const -2)) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (v128.store64_lane 0 (local.get $out) (f32x4.demote_f64x2_zero (call $exp2 (v128.load (local.get $x)))))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $l)))
    (if (i32.and (local.get $len) (i32.const 1))
      (then (f32.store (local.get $out) (call $exp1 (f64.load (local.get $x)))))))

  ;; Row dot products K_i· · v for four rows (at $row, stride $stride bytes) into out[0..3]: four entries of each row
  ;; per step (two float64 accumulators per row), the m mod 4 last ones one by one.
  (func $dot4 (param $row i32) (param $stride i32) (param $v i32) (param $m i32) (param $out i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $q i32) (local $end4 i32) (local $end i32)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128) (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (local $x v128) (local $y v128) (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $vj f64)
    (local.set $p0 (local.get $row))
    (local.set $p1 (i32.add (local.get $p0) (local.get $stride)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 2))))
    (local.set $q (local.get $v))
    (block $d_done
      (loop $d
        (br_if $d_done (i32.ge_u (local.get $p0) (local.get $end4)))
        (local.set $x (v128.load (local.get $q)))
        (local.set $y (v128.load offset=16 (local.get $q)))
        (local.set $a0 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p0))) (local.get $x) (local.get $a0)))
        (local.set $b0 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p1))) (local.get $x) (local.get $b0)))
        (local.set $c0 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p2))) (local.get $x) (local.get $c0)))
        (local.set $d0 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p3))) (local.get $x) (local.get $d0)))
        (local.set $a1 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p0))) (local.get $y) (local.get $a1)))
        (local.set $b1 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p1))) (local.get $y) (local.get $b1)))
        (local.set $c1 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p2))) (local.get $y) (local.get $c1)))
        (local.set $d1 (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p3))) (local.get $y) (local.get $d1)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
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
        (local.set $s0 (f64.add (local.get $s0) (f64.mul (f64.promote_f32 (f32.load (local.get $p0))) (local.get $vj))))
        (local.set $s1 (f64.add (local.get $s1) (f64.mul (f64.promote_f32 (f32.load (local.get $p1))) (local.get $vj))))
        (local.set $s2 (f64.add (local.get $s2) (f64.mul (f64.promote_f32 (f32.load (local.get $p2))) (local.get $vj))))
        (local.set $s3 (f64.add (local.get $s3) (f64.mul (f64.promote_f32 (f32.load (local.get $p3))) (local.get $vj))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $t)))
    (f64.store (local.get $out) (local.get $s0))
    (f64.store offset=8 (local.get $out) (local.get $s1))
    (f64.store offset=16 (local.get $out) (local.get $s2))
    (f64.store offset=24 (local.get $out) (local.get $s3)))

  ;; ktu = (((ktu + w0 K_0·) + w1 K_1·) + w2 K_2·) + w3 K_3· for four consecutive rows, one pass over ktu, four
  ;; columns per step (then the m mod 4 last ones one by one); a row whose weight is 0 adds exact zeros (the caller
  ;; passes 0 for a row that must not contribute)
  (func $axpy4 (param $row i32) (param $stride i32) (param $ktu i32) (param $m i32) (param $w0 f64) (param $w1 f64) (param $w2 f64) (param $w3 f64)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $q i32) (local $end4 i32) (local $end i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $v0 (f64x2.splat (local.get $w0)))
    (local.set $v1 (f64x2.splat (local.get $w1)))
    (local.set $v2 (f64x2.splat (local.get $w2)))
    (local.set $v3 (f64x2.splat (local.get $w3)))
    (local.set $p0 (local.get $row))
    (local.set $p1 (i32.add (local.get $p0) (local.get $stride)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $stride)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $stride)))
    (local.set $end (i32.add (local.get $row) (i32.shl (local.get $m) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $row) (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 2))))
    (local.set $q (local.get $ktu))
    (block $x_done
      (loop $xl
        (br_if $x_done (i32.ge_u (local.get $p0) (local.get $end4)))
        (v128.store (local.get $q)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p3))) (local.get $v3)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p2))) (local.get $v2)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p1))) (local.get $v1)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p0))) (local.get $v0)
            (v128.load (local.get $q)))))))
        (v128.store offset=16 (local.get $q)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p3))) (local.get $v3)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p2))) (local.get $v2)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p1))) (local.get $v1)
          (f64x2.relaxed_madd (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (local.get $p0))) (local.get $v0)
            (v128.load offset=16 (local.get $q)))))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
        (local.set $q (i32.add (local.get $q) (i32.const 32)))
        (br $xl)))
    (block $t_done
      (loop $tl
        (br_if $t_done (i32.ge_u (local.get $p0) (local.get $end)))
        (f64.store (local.get $q)
          (f64.add (f64.add (f64.add (f64.add (f64.load (local.get $q))
            (f64.mul (f64.promote_f32 (f32.load (local.get $p0))) (local.get $w0)))
            (f64.mul (f64.promote_f32 (f32.load (local.get $p1))) (local.get $w1)))
            (f64.mul (f64.promote_f32 (f32.load (local.get $p2))) (local.get $w2)))
            (f64.mul (f64.promote_f32 (f32.load (local.get $p3))) (local.get $w3))))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $tl))))

  ;; u_i = a_i / s; returns u_i if it is finite (0 stays 0), else clears *ok and returns 0 (the row adds nothing)
  (func $scale (param $a i32) (param $u i32) (param $i i32) (param $s f64) (param $ok i32) (result f64)
    (local $ui f64)
    (local.set $ui (f64.div (f64.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 3)))) (local.get $s)))
    (f64.store (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))) (local.get $ui))
    (if (result f64) (f64.eq (f64.sub (local.get $ui) (local.get $ui)) (f64.const 0))
      (then (local.get $ui))
      (else (i32.store (local.get $ok) (i32.const 0)) (f64.const 0))))

  ;; One fused sweep over K (n×m, float32): s_i = Σ_j K_ij v_j, u_i = a_i / s_i, then ktu_j = Σ_i K_ij u_i (ktu
  ;; zeroed first; rows whose u_i is not finite add nothing). Rows go four at a time (the last n mod 4 rows padded
  ;; with the previous rows at weight 0 by moving the block back). $tmp: 48 bytes of scratch. Returns 0 if some
  ;; u_i is not finite, else 1.
  (func (export "sweep32") (param $K i32) (param $a i32) (param $v i32) (param $u i32) (param $ktu i32) (param $n i32) (param $m i32) (param $tmp i32) (result i32)
    (local $i i32) (local $row i32) (local $stride i32) (local $ok i32) (local $w0 f64) (local $w1 f64) (local $w2 f64) (local $w3 f64)
    (local.set $ok (i32.add (local.get $tmp) (i32.const 32)))
    (i32.store (local.get $ok) (i32.const 1))
    (local.set $stride (i32.shl (local.get $m) (i32.const 2)))
    (memory.fill (local.get $ktu) (i32.const 0) (i32.shl (local.get $m) (i32.const 3)))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $row (i32.add (local.get $K) (i32.mul (local.get $i) (local.get $stride))))
        (call $dot4 (local.get $row) (local.get $stride) (local.get $v) (local.get $m) (local.get $tmp))
        (local.set $w0 (call $scale (local.get $a) (local.get $u) (local.get $i) (f64.load (local.get $tmp)) (local.get $ok)))
        (local.set $w1 (call $scale (local.get $a) (local.get $u) (i32.add (local.get $i) (i32.const 1)) (f64.load offset=8 (local.get $tmp)) (local.get $ok)))
        (local.set $w2 (call $scale (local.get $a) (local.get $u) (i32.add (local.get $i) (i32.const 2)) (f64.load offset=16 (local.get $tmp)) (local.get $ok)))
        (local.set $w3 (call $scale (local.get $a) (local.get $u) (i32.add (local.get $i) (i32.const 3)) (f64.load offset=24 (local.get $tmp)) (local.get $ok)))
        (call $axpy4 (local.get $row) (local.get $stride) (local.get $ktu) (local.get $m) (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows)))
    (i32.load (local.get $ok)))

  ;; Rows [i0, i1) of plan = diag(u) K diag(v) (float64), written to P (row i0 first); each row's sum goes to rs[i],
  ;; colSum += the row; returns Σ plan_ij · C_ij where C holds the same rows of the cost matrix (row i0 first).
  (func (export "finishRows32") (param $K i32) (param $C i32) (param $P i32) (param $u i32) (param $v i32) (param $rs i32) (param $col i32) (param $i0 i32) (param $i1 i32) (param $m i32) (result f64)
    (local $i i32) (local $p i32) (local $c i32) (local $o i32) (local $q i32) (local $w i32) (local $end2 i32) (local $end i32)
    (local $ui v128) (local $pl v128) (local $rsum v128) (local $cost v128) (local $x f64) (local $r f64) (local $t f64)
    (local.set $i (local.get $i0))
    (local.set $c (local.get $C))
    (local.set $o (local.get $P))
    (local.set $p (i32.add (local.get $K) (i32.shl (i32.mul (local.get $i0) (local.get $m)) (i32.const 2))))
    (local.set $cost (v128.const i64x2 0 0))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $i1)))
        (local.set $ui (f64x2.splat (f64.load (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3))))))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $m) (i32.const 2))))
        (local.set $end2 (i32.add (local.get $p) (i32.shl (i32.and (local.get $m) (i32.const -2)) (i32.const 2))))
        (local.set $q (local.get $v))
        (local.set $w (local.get $col))
        (local.set $rsum (v128.const i64x2 0 0))
        (block $v_done
          (loop $vl
            (br_if $v_done (i32.ge_u (local.get $p) (local.get $end2)))
            (local.set $pl (f64x2.mul (f64x2.mul (local.get $ui) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p)))) (v128.load (local.get $q))))
            (v128.store (local.get $o) (local.get $pl))
            (local.set $rsum (f64x2.add (local.get $rsum) (local.get $pl)))
            (v128.store (local.get $w) (f64x2.add (v128.load (local.get $w)) (local.get $pl)))
            (local.set $cost (f64x2.relaxed_madd (local.get $pl) (v128.load (local.get $c)) (local.get $cost)))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (local.set $w (i32.add (local.get $w) (i32.const 16)))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $vl)))
        (local.set $r (f64.add (f64x2.extract_lane 0 (local.get $rsum)) (f64x2.extract_lane 1 (local.get $rsum))))
        (if (i32.lt_u (local.get $p) (local.get $end))
          (then
            (local.set $x (f64.mul (f64.mul (f64x2.extract_lane 0 (local.get $ui)) (f64.promote_f32 (f32.load (local.get $p)))) (f64.load (local.get $q))))
            (f64.store (local.get $o) (local.get $x))
            (local.set $r (f64.add (local.get $r) (local.get $x)))
            (f64.store (local.get $w) (f64.add (f64.load (local.get $w)) (local.get $x)))
            (local.set $t (f64.add (local.get $t) (f64.mul (local.get $x) (f64.load (local.get $c)))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $o (i32.add (local.get $o) (i32.const 8)))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))))
        (f64.store (i32.add (local.get $rs) (i32.shl (local.get $i) (i32.const 3))) (local.get $r))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (f64.add (local.get $t) (f64.add (f64x2.extract_lane 0 (local.get $cost)) (f64x2.extract_lane 1 (local.get $cost)))))
)
