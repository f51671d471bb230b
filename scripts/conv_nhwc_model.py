"""A float64 numpy model of the channels-last convolution kernels' index arithmetic, for review
without a GPU (session 9 had no device time left to run their tests): conv_tc_nhwc_k thread by
thread (its 16-byte copies and their zero fill, the 4-stage shared-memory ring, ldmatrix's lane
addresses and the m16n8k16 fragment layouts of the PTX ISA, the epilogue's rows and channels)
and conv_smallc_nhwc_k (staged weights, 8 channels a thread), each against a direct conv at odd
sizes, every tile. It checks the indexing as written, not the hardware; the GPU tests are
tests/python/test_cuda_conv_tc.py.
    python3 scripts/conv_nhwc_model.py        (prints rel-L2 per case; ~1e-16 expected)"""
import numpy as np, sys, itertools
KBK, KLD, KST = 32, 40, 4

def ref_conv(x, w, b, r, s, p, d, act):
    n, ih, iw, c = x.shape; m, kh, kw, _ = w.shape
    oh = (ih + 2*p - d*(kh-1) - 1)//s + 1; ow = (iw + 2*p - d*(kw-1) - 1)//s + 1
    xp = np.zeros((n, ih+2*p, iw+2*p, c)); xp[:, p:p+ih, p:p+iw] = x
    y = np.zeros((n, oh, ow, m))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i*d: i*d + s*(oh-1)+1: s, j*d: j*d + s*(ow-1)+1: s, :]
            y += patch @ w[:, i, j, :].T
    y += b
    if r is not None: y += r
    return act(y)

def ldmatrix_x4(smem_rows_addr):
    # smem_rows_addr: list of 32 (array row view of 8 elements) supplied by lanes; returns regs[lane][4][2]
    regs = np.zeros((32, 4, 2))
    for i in range(4):
        mat = np.stack([smem_rows_addr[8*i + j] for j in range(8)])  # 8 x 8
        for lane in range(32):
            regs[lane, i] = mat[lane//4, 2*(lane%4): 2*(lane%4)+2]
    return regs

def mma(c, a, b0, b1):
    # c [32][4], a [32][4][2], b0/b1 [32][2]
    A = np.zeros((16, 16)); B = np.zeros((16, 8))
    for lane in range(32):
        g, t = lane//4, lane%4
        A[g, 2*t:2*t+2] = a[lane, 0]; A[g+8, 2*t:2*t+2] = a[lane, 1]
        A[g, 2*t+8:2*t+10] = a[lane, 2]; A[g+8, 2*t+8:2*t+10] = a[lane, 3]
        B[2*t:2*t+2, g] = b0[lane]; B[2*t+8:2*t+10, g] = b1[lane]
    C = A @ B
    for lane in range(32):
        g, t = lane//4, lane%4
        c[lane, 0:2] += C[g, 2*t:2*t+2]; c[lane, 2:4] += C[g+8, 2*t:2*t+2]

def emu(x, w, bias, res, s, p, d, act, WM, WN, MI, NI):
    N, IH, IW, C = x.shape; M, KH, KW, _ = w.shape
    OH = (IH + 2*p - d*(KH-1) - 1)//s + 1; OW = (IW + 2*p - d*(KW-1) - 1)//s + 1
    THREADS = WM*WN*32; BM = WM*MI*16; BN = WN*NI*8; AC = BM*4//THREADS; BC = BN*4//THREADS; ROWS = THREADS//4
    OHW = OH*OW; P = N*OHW
    xf = x.reshape(-1); wf = w.reshape(-1); y = np.full(P*M, np.nan)
    ncb = (C + KBK - 1)//KBK; KT = KH*KW*ncb; wrow = KH*KW*C
    for bx in range((P + BM - 1)//BM):
        for by in range((M + BN - 1)//BN):
            p0, m0 = bx*BM, by*BN
            As = np.full(KST*BM*KLD, np.nan); Bs = np.full(KST*BN*KLD, np.nan)   # flat, in elements
            # per-thread state: (offset of tap (0, 0) at channel 0, ih0, iw0) per row; weights' rows
            th, tb = [], []
            for tid in range(THREADS):
                rows = []
                for i in range(AC):
                    pp = p0 + (tid >> 2) + i*ROWS
                    if pp < P:
                        n = pp // OHW; r = pp - n*OHW; oh = r // OW; ow = r - oh*OW
                        ih0, iw0 = oh*s - p, ow*s - p
                        rows.append(((n*IH*IW + ih0*IW + iw0)*C, ih0, iw0))
                    else:
                        rows.append((0, -(1 << 30), 0))
                th.append(rows)
                brows = []
                for j in range(BC):
                    mm = m0 + (tid >> 2) + j*ROWS
                    brows.append((mm < M, mm*wrow if mm < M else 0))
                tb.append(brows)
            ld = [0, 0, 0]
            def load(stage):
                kh_, kw_, cb = ld
                for tid in range(THREADS):
                    col8 = (tid & 3)*8; c = cb*KBK + col8; tap = kh_*KW + kw_
                    cin = c < C; dy, dx = kh_*d, kw_*d
                    a_tap, b_tap = (dy*IW + dx)*C + c, tap*C + c
                    cp_a = (tid >> 2)*KLD + col8; cp_b = (tid >> 2)*KLD + col8
                    for i in range(AC):
                        off, ih0, iw0 = th[tid][i]
                        ok = cin and 0 <= ih0 + dy < IH and 0 <= iw0 + dx < IW
                        dst = cp_a + stage*BM*KLD + i*ROWS*KLD
                        As[dst:dst+8] = xf[off + a_tap: off + a_tap + 8] if ok else 0
                    for j in range(BC):
                        inb, off = tb[tid][j]; ok = cin and inb
                        dst = cp_b + stage*BN*KLD + j*ROWS*KLD
                        Bs[dst:dst+8] = wf[off + b_tap: off + b_tap + 8] if ok else 0
                ld[2] += 1
                if ld[2] == ncb:
                    ld[2] = 0; ld[1] += 1
                    if ld[1] == KW: ld[1] = 0; ld[0] += 1
            acc = np.zeros((WM*WN, MI, NI, 32, 4))
            for st in range(KST - 1):
                if st < KT: load(st)
            st_use, st_load = 0, KST - 1
            for kt in range(KT):
                if kt + KST - 1 < KT: load(st_load)
                st_load = 0 if st_load == KST - 1 else st_load + 1
                S = st_use
                st_use = 0 if st_use == KST - 1 else st_use + 1
                for warp in range(WM*WN):
                    wm, wn = warp % WM, warp // WM
                    fr_a = [(wm*MI*16 + (l & 15))*KLD + (l >> 4)*8 for l in range(32)]
                    fr_b = [(wn*NI*8 + (l >> 4)*8 + (l & 7))*KLD + ((l >> 3) & 1)*8 for l in range(32)]
                    for kk in (0, 16):
                        a = []
                        for mi in range(MI):
                            addrs = [As[f + S*BM*KLD + mi*16*KLD + kk:][:8] for f in fr_a]
                            a.append(ldmatrix_x4(addrs))
                        b = [None]*NI
                        for j in range(0, NI, 2):
                            addrs = [Bs[f + S*BN*KLD + j*8*KLD + kk:][:8] for f in fr_b]
                            rr = ldmatrix_x4(addrs)
                            b[j] = (rr[:, 0], rr[:, 1]); b[j+1] = (rr[:, 2], rr[:, 3])
                        for mi in range(MI):
                            for nj in range(NI):
                                mma(acc[warp, mi, nj], a[mi], b[nj][0], b[nj][1])
            for warp in range(WM*WN):
                wm, wn = warp % WM, warp // WM
                for lane in range(32):
                    gr, t2 = lane >> 2, (lane & 3)*2
                    for nj in range(NI):
                        m = m0 + wn*NI*8 + nj*8 + t2
                        if m >= M: continue
                        two = m + 1 < M
                        b0 = bias[m]; b1 = bias[m+1] if two else 0
                        for mi in range(MI):
                            for h in range(2):
                                pp = p0 + wm*MI*16 + mi*16 + gr + h*8
                                if pp >= P: continue
                                o = pp*M + m
                                v0 = acc[warp, mi, nj, lane, 2*h] + b0; v1 = acc[warp, mi, nj, lane, 2*h+1] + b1
                                if res is not None:
                                    v0 += res.reshape(-1)[o]
                                    if two: v1 += res.reshape(-1)[o+1]
                                y[o] = act(v0)
                                if two: y[o+1] = act(v1)
    return y.reshape(N, OH, OW, M)

relu = lambda v: np.maximum(v, 0)
def emu_smallc(x, w, bias, res, s, p, d, act):
    N, IH, IW, C = x.shape; M, KH, KW, _ = w.shape
    OH = (IH + 2*p - d*(KH-1) - 1)//s + 1; OW = (IW + 2*p - d*(KW-1) - 1)//s + 1
    K = KH*KW*C; chunks = (M+7)//8; Mp = chunks*8
    wf = w.reshape(-1); xf = x.reshape(-1)
    ws = np.array([wf[(i % Mp)*K + i//Mp] if i % Mp < M else 0 for i in range(K*Mp)])
    OHW = OH*OW; total = N*OHW*chunks; y = np.full(N*OHW*M, np.nan)
    vec = M % 8 == 0
    for idx in range(total):
        pp = idx // chunks; ch = idx - pp*chunks; m0 = ch*8
        n = pp // OHW; r = pp - n*OHW; oh = r // OW; ow = r - oh*OW
        ih0 = oh*s - p; iw0 = ow*s - p; xn = n*IH*IW*C
        acc = np.zeros(8)
        for kh in range(KH):
            ih = ih0 + kh*d
            if not 0 <= ih < IH: continue
            for kw in range(KW):
                iw = iw0 + kw*d
                if not 0 <= iw < IW: continue
                xp = xn + (ih*IW + iw)*C; wp = (kh*KW + kw)*C*Mp + m0
                for c in range(C):
                    acc += xf[xp + c]*ws[wp:wp+8]; wp += Mp
        o = pp*M + m0
        for j in range(8):
            if m0 + j >= M: break
            v = acc[j] + bias[m0+j] + (res.reshape(-1)[o+j] if res is not None else 0)
            y[o+j] = act(v)
    return y.reshape(N, OH, OW, M)
if __name__ == "__main__":
    TILES = {"256x64": (4, 2, 4, 4), "128x128": (2, 2, 4, 8), "128x64": (2, 2, 4, 4), "64x64": (2, 2, 2, 4), "128x32": (4, 1, 2, 4), "64x32": (2, 1, 2, 4)}
    GEOMS = [(1, 8, 9, (7, 7), 3, 1, 1, 1), (3, 16, 32, (13, 13), 3, 2, 1, 1), (1, 24, 40, (11, 9), 5, 1, 2, 1),
             (1, 64, 64, (9, 7), 3, 1, 2, 2), (2, 72, 100, (5, 7), 1, 1, 0, 1), (1, 8, 100, (7, 9), 1, 2, 0, 1)]
    relu = lambda v: np.maximum(v, 0)
    rng = np.random.default_rng(0)
    for gi, (n, c, m, hw, k, s, p, d) in enumerate(GEOMS):
        for name in (sys.argv[1:] or TILES):
            x = rng.standard_normal((n,) + hw + (c,)); w = rng.standard_normal((m, k, k, c)); b = rng.standard_normal(m)
            oh = (hw[0] + 2*p - d*(k-1) - 1)//s + 1; ow = (hw[1] + 2*p - d*(k-1) - 1)//s + 1
            r = rng.standard_normal((n, oh, ow, m)) if gi % 2 else None
            want = ref_conv(x, w, b, r, s, p, d, relu)
            got = emu(x, w, b, r, s, p, d, relu, *TILES[name])
            err = np.linalg.norm(got - want) / np.linalg.norm(want)
            print("tc", gi, name, "nan" if np.isnan(got).any() else f"{err:.2e}", flush=True)
    rng = np.random.default_rng(1)
    for gi, (n, c, m, hw, k, s, p, d) in enumerate([(1, 1, 64, (9, 7), 5, 1, 2, 1), (2, 3, 64, (11, 11), 7, 2, 3, 1), (1, 3, 32, (7, 5), 3, 2, 1, 1),
                                                    (2, 5, 9, (5, 7), 3, 1, 2, 2), (1, 1, 100, (5, 5), 1, 1, 0, 1), (1, 7, 40, (9, 5), 3, 1, 1, 1)]):
        x = rng.standard_normal((n,) + hw + (c,)); w = rng.standard_normal((m, k, k, c)); b = rng.standard_normal(m)
        oh = (hw[0] + 2*p - d*(k-1) - 1)//s + 1; ow = (hw[1] + 2*p - d*(k-1) - 1)//s + 1
        r = rng.standard_normal((n, oh, ow, m)) if gi % 2 == 0 else None
        want = ref_conv(x, w, b, r, s, p, d, relu); got = emu_smallc(x, w, b, r, s, p, d, relu)
        print("smallc", gi, "nan" if np.isnan(got).any() else f"{np.linalg.norm(got-want)/np.linalg.norm(want):.2e}")
