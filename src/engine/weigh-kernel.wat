;; The sampler's pass over the vocabulary (src/engine/weigh-kernel.ts loads it), in WebAssembly
;; SIMD: two float64 lanes at a time, with exactly the operations of temperedWeight() in
;; sampler.ts, so every weight is the same bit for bit. `npm run build:wasm` assembles this file
;; into weigh-kernel-wasm.ts; a unit test checks that the two agree.
;;
;; Memory, laid out by weigh-kernel.ts: at 0 the table e^-(k/64) for k = 0..4096 (float64), then
;; the bucket masses (float64, one per k), the logits (float32), the weights (float64), the near
;; ids and the members (int32) at offsets it passes in.
(module
  (memory (export "memory") 1)
  (global $nearCount (export "nearCount") (mut i32) (i32.const 0))
  (global $nearMass (export "nearMass") (mut f64) (f64.const 0))

  ;; The largest of the `size` float32s at `at`; NaN is passed over (pmax keeps the running best
  ;; when a lane is NaN), and -Infinity comes back if nothing else is there.
  (func (export "maxOf") (param $at i32) (param $size i32) (result f32)
    (local $i i32) (local $end i32) (local $m v128) (local $best f32) (local $value f32)
    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $end (i32.and (local.get $size) (i32.const -4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $m (f32x4.pmax (local.get $m)
          (v128.load (i32.add (local.get $at) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (local.set $best (f32x4.extract_lane 0 (local.get $m)))
    (if (f32.gt (f32x4.extract_lane 1 (local.get $m)) (local.get $best)) (then (local.set $best (f32x4.extract_lane 1 (local.get $m)))))
    (if (f32.gt (f32x4.extract_lane 2 (local.get $m)) (local.get $best)) (then (local.set $best (f32x4.extract_lane 2 (local.get $m)))))
    (if (f32.gt (f32x4.extract_lane 3 (local.get $m)) (local.get $best)) (then (local.set $best (f32x4.extract_lane 3 (local.get $m)))))
    ;; The last size % 4 logits.
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $i) (local.get $size)))
        (local.set $value (f32.load (i32.add (local.get $at) (i32.shl (local.get $i) (i32.const 2)))))
        (if (f32.gt (local.get $value) (local.get $best)) (then (local.set $best (local.get $value))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (local.get $best))

  ;; For each of the `size` logits (an even count: the caller pads with -Infinity):
  ;; gap = (best - logit) * inverse, weight = table[k] * series(gap - k/64) with k = floor(64 gap),
  ;; 0 from a gap of 64 on; the weights go to `weights`, the ids with gap < 16 to `near` in id
  ;; order (nearCount, nearMass), and, when `mass` is not 0, each weight is added to its bucket's
  ;; mass at `mass` + 8k, in id order (the caller zeroes the masses; a weight of 0 lands in bucket
  ;; 4096). Returns the sum of the weights.
  (func (export "weigh") (param $logits i32) (param $weights i32) (param $near i32) (param $mass i32) (param $size i32)
      (param $best f64) (param $inverse f64) (result f64)
    (local $i i32) (local $count i32) (local $at i32)
    (local $bestLanes v128) (local $inverseLanes v128)
    (local $gap v128) (local $clamped v128) (local $k v128) (local $bucket v128) (local $r v128) (local $w v128)
    (local $isNear v128) (local $total v128) (local $nearTotal v128)
    (local.set $bestLanes (f64x2.splat (local.get $best)))
    (local.set $inverseLanes (f64x2.splat (local.get $inverse)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
        (local.set $gap (f64x2.mul
          (f64x2.sub (local.get $bestLanes)
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $logits) (i32.shl (local.get $i) (i32.const 2))))))
          (local.get $inverseLanes)))
        ;; Clamped to 64 (bucket 4096, the table's last entry) so that a far, infinite or NaN gap
        ;; still reads inside the table; its weight is masked to 0 below. pmin(64, gap) is
        ;; gap < 64 ? gap : 64, so a NaN gap becomes 64 too (one instruction, where min is several).
        (local.set $clamped (f64x2.pmin (v128.const f64x2 64 64) (local.get $gap)))
        (local.set $k (f64x2.floor (f64x2.mul (local.get $clamped) (v128.const f64x2 64 64))))
        ;; k + 2^52 holds k (0..4096) in its low mantissa bits: the table index as lanes 0 and 2 of
        ;; the i32x4 view, without a float-to-int conversion (several instructions on x64).
        (local.set $bucket (f64x2.add (local.get $k) (v128.const f64x2 0x1p52 0x1p52)))
        ;; r = gap - k * (1/64), exact as in temperedWeight.
        (local.set $r (f64x2.sub (local.get $clamped) (f64x2.mul (local.get $k) (v128.const f64x2 0.015625 0.015625))))
        ;; table[k] * (1 - r * (1 - r * (0.5 - r * (SIXTH - r * TWENTY_FOURTH)))), with SIXTH and
        ;; TWENTY_FOURTH the float64 nearest 1/6 and 1/24, as written in sampler.ts.
        (local.set $w (f64x2.mul
          (v128.load64_lane 1 (i32.shl (i32x4.extract_lane 2 (local.get $bucket)) (i32.const 3))
            (v128.load64_zero (i32.shl (i32x4.extract_lane 0 (local.get $bucket)) (i32.const 3))))
          (f64x2.sub (v128.const f64x2 1 1) (f64x2.mul (local.get $r)
          (f64x2.sub (v128.const f64x2 1 1) (f64x2.mul (local.get $r)
          (f64x2.sub (v128.const f64x2 0.5 0.5) (f64x2.mul (local.get $r)
          (f64x2.sub (v128.const f64x2 0x1.5555555555555p-3 0x1.5555555555555p-3)
            (f64x2.mul (local.get $r) (v128.const f64x2 0x1.5555555555555p-5 0x1.5555555555555p-5)))))))))))
        (local.set $w (v128.and (local.get $w) (f64x2.lt (local.get $gap) (v128.const f64x2 64 64))))
        (v128.store (i32.add (local.get $weights) (i32.shl (local.get $i) (i32.const 3))) (local.get $w))
        (local.set $total (f64x2.add (local.get $total) (local.get $w)))
        ;; The bucket masses, one lane after the other so that each bucket sums in id order.
        (if (local.get $mass) (then
          (local.set $at (i32.add (local.get $mass) (i32.shl (i32x4.extract_lane 0 (local.get $bucket)) (i32.const 3))))
          (f64.store (local.get $at) (f64.add (f64.load (local.get $at)) (f64x2.extract_lane 0 (local.get $w))))
          (local.set $at (i32.add (local.get $mass) (i32.shl (i32x4.extract_lane 2 (local.get $bucket)) (i32.const 3))))
          (f64.store (local.get $at) (f64.add (f64.load (local.get $at)) (f64x2.extract_lane 1 (local.get $w))))))
        ;; Near ids without a branch: each id is written at near[count], and count moves on only
        ;; for a near one (a true lane is all ones, -1 as an int32).
        (local.set $isNear (f64x2.lt (local.get $gap) (v128.const f64x2 16 16)))
        (local.set $nearTotal (f64x2.add (local.get $nearTotal) (v128.and (local.get $w) (local.get $isNear))))
        (i32.store (i32.add (local.get $near) (i32.shl (local.get $count) (i32.const 2))) (local.get $i))
        (local.set $count (i32.sub (local.get $count) (i32x4.extract_lane 0 (local.get $isNear))))
        (i32.store (i32.add (local.get $near) (i32.shl (local.get $count) (i32.const 2))) (i32.add (local.get $i) (i32.const 1)))
        (local.set $count (i32.sub (local.get $count) (i32x4.extract_lane 2 (local.get $isNear))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $next)))
    (global.set $nearCount (local.get $count))
    (global.set $nearMass (f64.add (f64x2.extract_lane 0 (local.get $nearTotal)) (f64x2.extract_lane 1 (local.get $nearTotal))))
    (f64.add (f64x2.extract_lane 0 (local.get $total)) (f64x2.extract_lane 1 (local.get $total))))

  ;; The members of one bucket among `count` ids at `ids` (ids weigh() gave a weight, in id order):
  ;; writes those whose bucket, floor(64 (best - logit) inverse) as weigh() computes it, is `bucket`
  ;; to `out`, last id first, and returns how many.
  (func (export "membersOf") (param $logits i32) (param $ids i32) (param $count i32) (param $out i32)
      (param $best f64) (param $inverse f64) (param $bucket i32) (result i32)
    (local $j i32) (local $id i32) (local $found i32) (local $wanted f64)
    (local.set $wanted (f64.convert_i32_s (local.get $bucket)))
    (local.set $j (local.get $count))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $j)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (local.set $id (i32.load (i32.add (local.get $ids) (i32.shl (local.get $j) (i32.const 2)))))
        ;; A weighed id's gap is below 64, so weigh()'s clamp leaves it as it is.
        (if (f64.eq (local.get $wanted)
              (f64.floor (f64.mul (f64.const 64)
                (f64.mul (f64.sub (local.get $best)
                  (f64.promote_f32 (f32.load (i32.add (local.get $logits) (i32.shl (local.get $id) (i32.const 2))))))
                  (local.get $inverse)))))
          (then
            (i32.store (i32.add (local.get $out) (i32.shl (local.get $found) (i32.const 2))) (local.get $id))
            (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (br $next)))
    (local.get $found))
)
