"""Winograd transform matrices F(m, r) by the Cook-Toom construction, exact (fractions).

A linear convolution s = g * h of an r-tap g and an m-tap h has n = m + r - 1
coefficients. Evaluating it at n - 1 finite points and at infinity (the
leading coefficient) gives V_n s = (V_r g) . (V_m h), where V_k evaluates a
polynomial of k coefficients at those points. The correlation a convolution
layer computes, y_i = sum_k d_(i+k) g_k for i < m, is the transpose of that
linear map in h:

    y = AT [(G g) . (BT d)]   with   AT = V_m^T,  G = V_r,  BT = V_n^-T

and in two dimensions Y = AT [(G g G^T) . (BT d BT^T)] AT^T over n x n tiles
of the input that produce m x m tiles of the output.

Each row of BT is then scaled to integers and the same row of G divided by
that factor (the elementwise product is unchanged): the fractions move to the
filter transform, computed once per filter. The points 0, 1, -1, 2, -1/2 (then
-2, 1/2) gave F(4x4,3x3) about half the float32 error of 0, +-1, +-2 in a
simulation over random tiles (largest error 2.1e-6 against 5.5e-6 of the
largest output)."""

import math
from fractions import Fraction

POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-1, 2), Fraction(-2), Fraction(1, 2))


def _evaluation(k, n):
    """V_k: n rows (n - 1 finite points, then infinity) by k polynomial coefficients."""
    rows = [[p ** j for j in range(k)] for p in POINTS[:n - 1]]
    return rows + [[Fraction(int(j == k - 1)) for j in range(k)]]


def _inverse(a):
    """Inverse of a square matrix of Fractions (Gauss-Jordan)."""
    n = len(a)
    m = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        pivot = next(r for r in range(c, n) if m[r][c] != 0)
        m[c], m[pivot] = m[pivot], m[c]
        m[c] = [v / m[c][c] for v in m[c]]
        for r in range(n):
            if r != c and m[r][c] != 0:
                m[r] = [v - m[r][c] * w for v, w in zip(m[r], m[c])]
    return [row[n:] for row in m]


def _transpose(a):
    return [list(col) for col in zip(*a)]


def transforms(m, r):
    """(AT, G, BT) of F(m, r) as lists of rows of Fractions: m x n, n x r and n x n."""
    n = m + r - 1
    if n - 1 > len(POINTS):
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points; {len(POINTS)} are defined")
    g, bt = _evaluation(r, n), _transpose(_inverse(_evaluation(n, n)))
    for i, row in enumerate(bt):
        scale = math.lcm(*(v.denominator for v in row))
        bt[i] = [v * scale for v in row]
        g[i] = [v / scale for v in g[i]]
    return _transpose(_evaluation(m, n)), g, bt


def c_initializer(matrix):
    """A matrix as a flat OpenCL C initializer without spaces (a -D value): {1.0f,-0.5f,...}."""
    return "{" + ",".join(f"{float(v)!r}f" for row in matrix for v in row) + "}"
