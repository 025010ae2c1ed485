// Stable sorting of rows, and reducing runs of equal sorted keys.
// Same program and -D defines as index.cl (TO, CT, LDX, STX, TM).
//
// Order: NaN above every number (as torch), ties broken by original
// position, so every sort is stable and the order is total. Rows of up to
// `block` elements are bitonic-sorted in local memory; longer rows are
// sorted in blocks and then merged pairwise (merge_pass, log2(L/block) times).

#ifdef CT_IS_INT
#define KEY_NAN(a) 0
#else
#define KEY_NAN(a) isnan(a)
#endif

inline bool key_above(CT a, CT b) { return KEY_NAN(a) ? !KEY_NAN(b) : (!KEY_NAN(b) && a > b); }

// Whether (ka, ia) comes before (kb, ib); position -1 marks padding, which goes last.
inline bool before(CT ka, long ia, CT kb, long ib, int desc) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  bool above = key_above(ka, kb), below = key_above(kb, ka);
  if (desc ? above : below) return true;
  if (desc ? below : above) return false;
  return ia < ib;
}

// One work-group per (row, block): sorts x's block (rows of L elements,
// row_stride apart) into keys/idx (rows of L, contiguous); idx holds each
// element's position in its row. P: block length rounded up to a power of 2.
__kernel void sort_blocks(__global const TO* x, long x_off, long row_stride, long L, long block,
                          int P, int desc, __global TO* keys, long k_off, __global long* idx,
                          long i_off, __local CT* lk, __local long* li) {
  long nblocks = (L + block - 1) / block;
  long row = get_group_id(0) / nblocks, start = (get_group_id(0) % nblocks) * block;
  long len = min(block, L - start);
  int lid = get_local_id(0), lsz = get_local_size(0);
  for (int t = lid; t < P; t += lsz) {
    lk[t] = t < len ? LDX(x, x_off + row * row_stride + start + t) : (CT)0;
    li[t] = t < len ? start + t : -1;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int k = 2; k <= P; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = lid; t < P / 2; t += lsz) {
        int a = 2 * t - (t & (j - 1)), b = a + j;
        bool up = (a & k) == 0;
        bool swap = up ? before(lk[b], li[b], lk[a], li[a], desc) : before(lk[a], li[a], lk[b], li[b], desc);
        if (swap) {
          CT tk = lk[a];
          lk[a] = lk[b];
          lk[b] = tk;
          long ti = li[a];
          li[a] = li[b];
          li[b] = ti;
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
  }
  for (int t = lid; t < len; t += lsz) {
    STX(keys, k_off + row * L + start + t, lk[t]);
    idx[i_off + row * L + start + t] = li[t];
  }
}

// Merges sorted runs of `width` pairwise (rows of L): each element finds its
// place by a binary search in the neighbouring run. n = rows * L.
__kernel void merge_pass(__global const TO* kin, __global const long* iin, __global TO* kout,
                         __global long* iout, long L, long width, int desc, long n) {
  long g = get_global_id(0);
  if (g >= n) return;
  long row = g / L, p = g % L, base = row * L;
  long blk = p / width, ls = (blk & ~1L) * width, rs = ls + width;
  CT mk = LDX(kin, base + p);
  long mi = iin[base + p];
  long lo, hi, mine;
  if ((blk & 1) == 0) {
    lo = min(rs, L), hi = min(rs + width, L), mine = p - ls;
  } else {
    lo = ls, hi = rs, mine = p - rs;
  }
  long first = lo;
  while (lo < hi) {  // count of the other run's elements that come before this one
    long mid = (lo + hi) / 2;
    if (before(LDX(kin, base + mid), iin[base + mid], mk, mi, desc)) lo = mid + 1;
    else hi = mid;
  }
  long q = base + ls + mine + (lo - first);
  ((__global TM*)kout)[q] = ((__global const TM*)kin)[base + p];
  iout[q] = mi;
}

// Scatter with reduction: keys are destination offsets sorted stably, pos
// the source row of each; the first item of each run of equal keys combines
// the run in order (deterministic) and stores it. op: 0 assign (last wins),
// 1 sum, 2 prod, 3 mean, 4 amax, 5 amin. E values per row (dimension 1).
__kernel void segment_reduce(__global TO* out, long o_off, __global const TO* src, long s_off,
                             __global const long* keys, __global const long* pos, long N, long E,
                             long o_inner, long s_row, long s_inner, int op, int include_self) {
  long p = get_global_id(0), e = get_global_id(1);
  if (p >= N || e >= E) return;
  long key = keys[p];
  if (p > 0 && keys[p - 1] == key) return;
  long dst = o_off + key + e * o_inner;
  CT acc = include_self ? LDX(out, dst) : (CT)0;
  long cnt = include_self ? 1 : 0;
  for (long q = p; q < N && keys[q] == key; q++) {
    CT v = LDX(src, s_off + pos[q] * s_row + e * s_inner);
    if (cnt == 0 || op == 0) acc = v;
    else if (op == 1 || op == 3) acc += v;
    else if (op == 2) acc *= v;
    else if (op == 4) acc = (KEY_NAN(v) || v > acc) ? v : acc;
    else if (op == 5) acc = (KEY_NAN(v) || v < acc) ? v : acc;
    cnt++;
  }
  if (op == 3) {
#ifdef CT_IS_INT
    acc = acc / (CT)cnt - ((acc % (CT)cnt != 0) && ((acc < 0) != (cnt < 0)));  // floor division
#else
    acc = acc / (CT)cnt;
#endif
  }
  STX(out, dst, acc);
}

// out[i]: where value i goes in its row of L sorted elements (torch.searchsorted): the first
// position whose element is >= the value (right: >), compared as torch does, so that a NaN value
// lands past every number. The row is value i / inner (every value searches row 0 when one_row);
// sorter, when given, holds each row's ascending order as positions within the row.
__kernel void search_sorted(__global long* out, long o_off, int out32, __global const TO* seq,
                            long s_off, __global const TO* v, long v_off, __global const long* sorter,
                            long so_off, int use_sorter, long L, long inner, int one_row, int right,
                            long n) {
  long i = get_global_id(0);
  if (i >= n) return;
  long base = one_row ? 0 : (i / inner) * L;
  CT value = LDX(v, v_off + i);
  long lo = 0, hi = L;
  while (lo < hi) {
    long mid = lo + ((hi - lo) >> 1);
    CT m = LDX(seq, s_off + base + (use_sorter ? sorter[so_off + base + mid] : mid));
    if (right ? !(m > value) : !(m >= value)) lo = mid + 1;
    else hi = mid;
  }
  if (out32) ((__global int*)out)[o_off + i] = (int)lo;
  else out[o_off + i] = lo;
}
