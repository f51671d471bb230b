/* Recurrent, signal and tensor-algebra ops: RNN, GRU, LSTM, DFT, STFT, windows, Einsum, OneHot: op definitions. */
#include "ops/families.h"

const dt_opdef dt_ops_seq[] = {
    {NULL, NULL, NULL, 0},
};
