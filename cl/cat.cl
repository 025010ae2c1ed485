// torch.cat of up to 16 inputs in one launch.
//
// The output and the inputs share one dense layout, so along the
// concatenated dim each is a matrix of rows in memory order: the output's
// rows are `out_inner` elements long, input j's are inner_j long and land at
// column dst_j of every output row. Input j (buffer a_j from element ao_j,
// n_j elements) runs on get_global_id(1) == j; dimension 0 strides over its
// elements. OpenCL 1.2 kernels cannot receive an array of buffers, hence one
// argument group per slot.
//
// -D: TM, an unsigned integer type of the element size (a copy moves bits).

#define CAT_SLOT(j) __global const TM *a##j, int ao##j, int inner##j, int dst##j, int n##j

#define CAT_PICK(j)                                                          \
  case j:                                                                    \
    a = a##j; ao = ao##j; inner = inner##j; dst = dst##j; n = n##j;          \
    break;

__kernel void cat_slots(__global TM *out, int oo, int out_inner,
                        CAT_SLOT(0), CAT_SLOT(1), CAT_SLOT(2), CAT_SLOT(3),
                        CAT_SLOT(4), CAT_SLOT(5), CAT_SLOT(6), CAT_SLOT(7),
                        CAT_SLOT(8), CAT_SLOT(9), CAT_SLOT(10), CAT_SLOT(11),
                        CAT_SLOT(12), CAT_SLOT(13), CAT_SLOT(14), CAT_SLOT(15)) {
  __global const TM *a;
  int ao, inner, dst, n;
  switch (get_global_id(1)) {
    CAT_PICK(0) CAT_PICK(1) CAT_PICK(2) CAT_PICK(3)
    CAT_PICK(4) CAT_PICK(5) CAT_PICK(6) CAT_PICK(7)
    CAT_PICK(8) CAT_PICK(9) CAT_PICK(10) CAT_PICK(11)
    CAT_PICK(12) CAT_PICK(13) CAT_PICK(14) CAT_PICK(15)
    default: return;
  }
  for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
    int row = i / inner;
    out[oo + row * out_inner + dst + (i - row * inner)] = a[ao + i];
  }
}
