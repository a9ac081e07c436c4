;; CRC-64/ISO (Go's crc64.ISO), slicing-by-8 over 64-bit words: the hot loop of tar-split.
;; Memory: 8 tables of 256 little-endian u64 at 0..16383 (table k = CRC of a byte followed by
;; k zero bytes; filled by crc64.ts), then a 1 MiB input area at 16384, then an arena of
;; 1 MiB read buffers that callers fill in place (see crc64.ts). `update` checksums `len` bytes
;; at `ptr`. The register is kept inverted between calls, as in crc64.ts. Compiled by
;; scripts/build-wasm.mjs into crc64-wasm.ts.
(module
  (memory (export "memory") 145)
  (func (export "update") (param $crc i64) (param $ptr i32) (param $len i32) (result i64)
    (local $p i32) (local $end i32) (local $end8 i32) (local $x i64)
    (local.set $p (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $end8 (i32.sub (local.get $end) (i32.and (local.get $len) (i32.const 7))))
    (block $words
      (loop $word
        (br_if $words (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $x (i64.xor (local.get $crc) (i64.load (local.get $p))))
        (local.set $crc
          (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.xor (i64.load offset=14336 (i32.shl (i32.wrap_i64 (i64.and (local.get $x) (i64.const 255))) (i32.const 3)))
            (i64.load offset=12288 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 8)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=10240 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 16)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=8192 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 24)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=6144 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 32)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=4096 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=2048 (i32.shl (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 48)) (i64.const 255))) (i32.const 3))))
            (i64.load offset=0 (i32.shl (i32.wrap_i64 (i64.shr_u (local.get $x) (i64.const 56))) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $word)))
    (block $bytes
      (loop $byte
        (br_if $bytes (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $crc
          (i64.xor
            (i64.load (i32.shl
              (i32.and (i32.xor (i32.wrap_i64 (local.get $crc)) (i32.load8_u (local.get $p))) (i32.const 255))
              (i32.const 3)))
            (i64.shr_u (local.get $crc) (i64.const 8))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $byte)))
    (local.get $crc)))
