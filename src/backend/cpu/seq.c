/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot: CPU kernels. */
#include "backend/cpu/families.h"

const dt_cpu_kernel dt_cpu_seq[] = {
    {NULL, NULL},
};
