/* The nn ops (pooling, Resize, Softmax, normalizations, reductions): each op's check, infer
 * and CPU kernel at small odd shapes, against values computed with onnxruntime 1.30 for the
 * same single-node model. Inputs are generated here and in the generator by one formula,
 * x[i] = ((i * 7919 + seed * 31) % 23 - 11) / 4, so only the expected outputs are embedded. */
#include "ophelp.h"
#include "ops/nn.h"
#include "ops/families.h"
#include "backend/cpu/families.h"
#include "backend/cpu/nn_kernels.h"
#include "core/status.h"
#include "core/threadpool.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* [1, 3, 1, 1] */
static const float exp_gap[] = {-0.0833333358f, 0.100000001f, -0.100000001f};
/* [2, 2, 1, 1] */
static const float exp_gmp[] = {2.75f, 2.5f, 2.75f, 2.25f};
/* [1, 2, 4, 4] */
static const float exp_maxpool_ceil[] = {1.5f, 2.5f, 2.75f, 2.0f, 2.25f, 2.5f, 2.75f, 1.25f, 1.5f, 2.5f, 2.75f, 2.25f, 2.5f, 1.75f, 2.0f, 1.5f, 1.75f, 2.75f, 1.25f, 2.25f, 2.5f, 2.75f, 2.25f, 1.5f, 1.75f, 2.75f, 2.25f, 2.5f, 2.75f, 2.0f, 2.25f, 1.75f};
/* [1, 1, 5, 5] */
static const float exp_maxpool_dil[] = {2.75f, 2.25f, 2.5f, 2.25f, 2.5f, 2.0f, 1.5f, 1.25f, 1.5f, 2.5f, 2.75f, 2.25f, 2.0f, 2.25f, 1.75f, 2.75f, 1.0f, 2.75f, 2.25f, 2.5f, 2.0f, 1.75f, 2.0f, 1.5f, 1.25f};
/* [1, 2, 4, 5] */
static const float exp_avgpool_excl[] = {-1.1875f, 0.0f, 0.625f, 0.291666657f, -0.4375f, -0.0833333358f, -0.333333343f, -0.027777778f, -0.361111104f, 0.666666687f, -0.208333328f, -0.138888896f, 0.166666672f, -0.166666672f, -0.416666657f, -0.0625f, -0.791666687f, 0.791666687f, 0.458333343f, 0.6875f, -0.1875f, 0.0416666679f, -0.291666657f, -0.625f, -0.875f, 0.916666687f, 0.027777778f, 0.333333343f, 0.0f, -0.25f, -0.166666672f, -0.416666657f, -0.111111112f, 0.194444448f, -0.375f, 0.9375f, 0.208333328f, -0.125f, -0.458333343f, -1.1875f};
/* [1, 2, 4, 5] */
static const float exp_avgpool_incl[] = {-0.527777791f, 0.0f, 0.416666657f, 0.194444448f, -0.194444448f, -0.055555556f, -0.333333343f, -0.027777778f, -0.361111104f, 0.444444448f, -0.138888896f, -0.138888896f, 0.166666672f, -0.166666672f, -0.277777791f, -0.027777778f, -0.527777791f, 0.527777791f, 0.305555552f, 0.305555552f, -0.0833333358f, 0.027777778f, -0.194444448f, -0.416666657f, -0.388888896f, 0.611111104f, 0.027777778f, 0.333333343f, 0.0f, -0.166666672f, -0.111111112f, -0.416666657f, -0.111111112f, 0.194444448f, -0.25f, 0.416666657f, 0.138888896f, -0.0833333358f, -0.305555552f, -0.527777791f};
/* [1, 1, 3, 3] */
static const float exp_avgpool_same[] = {-0.541666687f, 0.166666672f, -0.0833333358f, -0.291666657f, -0.222222224f, -0.791666687f, 0.375f, 0.125f, -0.125f};
/* [1, 2, 4] */
static const float exp_maxpool_1d[] = {1.25f, 0.75f, 2.5f, 2.0f, 1.5f, 1.5f, 2.75f, 2.75f};
/* [1, 2, 11, 9] */
static const float exp_resize_lin_up[] = {-2.75f, -1.58333337f, -0.222222269f, 1.13888907f, 2.5f, -0.611110687f, -0.527777314f, 0.833333611f, 2.0f, -2.61363649f, -1.44696975f, -0.0858586133f, 1.04292929f, 1.590909f, -0.70707047f, -0.391413659f, 0.969697237f, 2.13636351f, -2.27272725f, -1.10606074f, 0.25505048f, 0.803030133f, -0.681818068f, -0.946969688f, -0.0505046248f, 1.31060636f, 2.47727275f, -1.93181825f, -0.76515162f, 0.595959485f, 0.67929244f, -2.43181825f, -1.07070732f, 0.290404439f, 1.47727311f, 2.29545498f, -1.59090912f, -0.424242526f, 0.936868548f, 1.02020168f, -2.090909f, -0.729798198f, 0.631313562f, 0.946969569f, 0.0227274895f, -1.25f, -0.0833334029f, 1.27777767f, 1.36111069f, -1.75f, -0.388889074f, 0.972222686f, 0.416666031f, -2.25f, -0.909090877f, 0.257575691f, 0.457070589f, -0.330808342f, -1.40909088f, -0.0479799509f, 1.31313181f, 0.757575154f, -1.90909088f, -0.568181932f, 0.598484635f, -0.363635957f, -2.02272654f, -1.06818199f, 0.292929024f, 1.65404081f, 1.09848416f, -1.56818199f, -0.227272809f, 0.939393759f, -0.255050451f, -2.08838367f, -0.727272809f, 0.633838058f, 0.833333552f, 0.0454546362f, -1.22727287f, 0.113636136f, 1.28030276f, 0.0858585238f, -1.74747479f, -0.386363864f, 0.974747121f, -0.277777791f, -1.35605955f, -0.886363864f, 0.25f, 1.41666663f, 0.222222328f, -1.61111093f, -0.25f, 1.11111093f, -0.722223282f, -1.91666627f, -0.75f, 1.0f, 2.16666651f, 0.972222388f, -0.861110926f, 0.5f, 1.86111093f, 0.0277767181f, -1.16666639f, 0.0f, 1.13636363f, 1.60606062f, 0.527777791f, -0.7247473f, 0.636363626f, 1.18434334f, -0.300505906f, -1.03030264f, 0.13636364f, 1.47727275f, 0.204545498f, -0.583333313f, -0.383838177f, 0.977272689f, -0.507575512f, -1.12121224f, -0.68939364f, 0.477272719f, 1.81818175f, -0.848484755f, -1.40404058f, -0.0429291651f, 1.31818175f, -1.7929287f, -1.70959556f, -0.348484606f, 0.818181753f, 2.159091f, -0.507575631f, -1.06313145f, 0.297979951f, 1.65909088f, -1.45201969f, -1.36868644f, -0.00757551193f, 1.15909088f, 2.5f, -0.166666508f, -0.722222269f, 0.638889074f, 2.0f, -1.11111069f, -1.02777731f, 0.333333611f, 1.5f, 0.227272511f, -0.696969748f, -0.381313145f, 0.979798198f, 2.340909f, -0.770201564f, -0.686868191f, 0.674242735f, 1.84090924f, -2.04545403f, -1.22727251f, -0.0404042006f, 1.32070708f, 2.68181801f, -0.429292589f, -0.345959246f, 1.01515174f, 2.18181801f, -2.22727275f, -1.06060612f, 0.300504893f, 1.19696975f, 0.931818664f, -0.553030014f, -0.00505009294f, 0.659090996f, 0.431818753f, -1.88636386f, -0.719697237f, 0.641413808f, 0.95707047f, -1.34090757f, -0.792929232f, 0.335858822f, 0.128787756f, -1.84090745f, -1.75f, -0.583333373f, 0.777777731f, 0.861110687f, -2.25f, -0.888889074f, 0.472222686f, -0.0833339691f, -2.75f};
/* [1, 1, 4, 6] */
static const float exp_resize_lin_down[] = {-1.05208349f, 0.34375f, -1.13541603f, 1.69791603f, 0.21875f, -1.7395829f, 1.61458349f, -0.34375f, -1.82291603f, 1.01041591f, -0.46875f, 0.927082002f, 0.927083373f, -1.03125f, -0.533853948f, 0.802083611f, -1.15625f, 0.239582032f, 0.239583358f, -0.28125f, 2.07291627f, 0.114583611f, -1.84375f, -0.148438543f};
/* [1, 1, 7, 6] */
static const float exp_resize_near_floor[] = {-2.25f, -2.25f, -0.5f, 1.25f, 1.25f, -2.75f, -2.25f, -2.25f, -0.5f, 1.25f, 1.25f, -2.75f, -2.25f, -2.25f, -0.5f, 1.25f, 1.25f, -2.75f, -1.0f, -1.0f, 0.75f, 2.5f, 2.5f, -1.5f, -1.0f, -1.0f, 0.75f, 2.5f, 2.5f, -1.5f, 0.25f, 0.25f, 2.0f, -2.0f, -2.0f, -0.25f, 0.25f, 0.25f, 2.0f, -2.0f, -2.0f, -0.25f};
/* [1, 1, 7, 4] */
static const float exp_resize_near_rpf[] = {-0.25f, -2.5f, -0.75f, 2.75f, -0.25f, -2.5f, -0.75f, 2.75f, -1.25f, 2.25f, -1.75f, 1.75f, -1.25f, 2.25f, -1.75f, 1.75f, -2.25f, 1.25f, -2.75f, 0.75f, 2.5f, 0.25f, 2.0f, -0.25f, 2.5f, 0.25f, 2.0f, -0.25f};
/* [1, 2, 5, 8] */
static const float exp_resize_align[] = {1.75f, 0.211538494f, -1.32692301f, -1.98076928f, -1.30769241f, -0.634615481f, 0.0384614393f, 0.711538374f, -0.445121884f, -0.904784203f, -1.36444652f, -1.37101316f, -0.697936296f, -0.0248593912f, 0.648217499f, 1.32129443f, -2.64024377f, -2.02110696f, -1.40197003f, -0.761257112f, -0.0881802216f, 0.584896684f, 1.25797355f, 1.93105054f, -2.17073178f, -1.49765491f, -0.824577987f, -0.151501045f, 0.521575868f, 1.1946528f, 1.0478425f, 0.69606024f, -1.56097567f, -0.887898803f, -0.214821875f, 0.458255023f, 1.13133192f, 1.80440879f, 0.79455936f, -0.636022091f, -0.25f, 0.423076898f, 1.09615386f, 0.884615481f, -0.653846025f, -2.19230747f, -1.96153855f, -1.28846169f, 0.359756082f, 1.03283298f, 1.70590985f, 1.49437153f, -0.0440899283f, -1.58255148f, -1.35178244f, -0.678705573f, 0.969512165f, 1.64258909f, 2.31566596f, 2.10412765f, 0.565666139f, -0.972795367f, -0.742026389f, -0.0689494982f, 1.57926822f, 1.22748601f, 0.875703752f, 0.459193468f, -0.0544088855f, -0.568011224f, -0.132270336f, 0.540806592f, 2.18902421f, 0.758442879f, -0.672138572f, -1.30440879f, -0.739211977f, -0.174015135f, 0.477485746f, 1.15056264f};
/* [1, 1, 1, 7] */
static const float exp_resize_pt[] = {-2.0f, -1.74999988f, -0.999999881f, -0.25f, 0.50000006f, 1.25000012f, 1.5f};
/* [1, 1, 3, 7] */
static const float exp_resize_tfnn[] = {1.25f, -2.75f, -2.75f, -1.0f, 0.75f, 0.75f, 0.75f, -2.0f, -0.25f, -0.25f, 1.5f, -2.5f, -2.5f, -2.5f, -0.75f, 1.0f, 1.0f, 2.75f, -1.25f, -1.25f, -1.25f};
/* [1, 1, 3, 7] */
static const float exp_resize10_near[] = {2.0f, 2.0f, -2.0f, -2.0f, -0.25f, -0.25f, 1.5f, -1.25f, -1.25f, 0.5f, 0.5f, 2.25f, 2.25f, -1.75f, 1.25f, 1.25f, -2.75f, -2.75f, -1.0f, -1.0f, 0.75f};
/* [1, 1, 6, 6] */
static const float exp_resize10_lin[] = {-1.75f, -0.583333313f, 0.583333373f, 1.75f, -0.916667044f, -2.25f, -1.125f, 0.0416666865f, 0.24999994f, -0.5f, -1.25000012f, -1.625f, -0.5f, 0.666666746f, -0.0833334923f, -2.75f, -1.58333325f, -1.0f, 0.125f, 1.29166675f, 0.541666508f, -2.125f, -0.958333135f, -0.375f, 0.75f, 1.91666675f, 1.16666651f, -1.5f, -0.333333194f, 0.25f, 0.75f, 1.91666675f, 1.16666651f, -1.5f, -0.333333194f, 0.25f};
/* [1, 5, 3, 3] */
static const float exp_resize_chan[] = {0.25f, 2.0f, -2.0f, 0.0f, 1.75f, -2.25f, -0.25f, 1.5f, -2.5f, -0.150000021f, 1.5999999f, -0.0999997854f, -0.400000036f, 1.35000002f, -0.349999785f, -0.650000095f, 1.10000002f, -0.599999785f, -0.75f, 1.0f, 2.75f, -1.0f, 0.75f, 2.5f, -1.25f, 0.5f, 2.25f, -1.35000014f, 0.399999857f, 2.14999986f, -1.60000014f, 0.149999857f, 1.89999986f, -1.85000014f, -0.100000143f, 1.64999986f, -1.75f, 0.0f, 1.75f, -2.0f, -0.25f, 1.5f, -2.25f, -0.5f, 1.25f};
/* [2, 3, 4] */
static const float exp_softmax11[] = {0.266713053f, 0.0048850202f, 0.0281113498f, 0.161769643f, 0.00296291453f, 0.0170503948f, 0.0981182531f, 0.00179709855f, 0.0103415884f, 0.0595117286f, 0.342466354f, 0.00627249014f, 0.0289147794f, 0.166393057f, 0.00304759527f, 0.0175377f, 0.100922495f, 0.00184845994f, 0.0106371529f, 0.0612125881f, 0.352254122f, 0.00645175949f, 0.0371273123f, 0.213652924f};
/* [2, 3, 4] */
static const float exp_softmax13[] = {0.952486873f, 0.0599777922f, 0.0599777922f, 0.952486873f, 0.0105811739f, 0.209343076f, 0.209343076f, 0.0105811739f, 0.0369319245f, 0.730679095f, 0.730679095f, 0.0369319245f, 0.0599777922f, 0.952486873f, 0.0599777922f, 0.0599777922f, 0.209343076f, 0.0105811739f, 0.209343076f, 0.209343076f, 0.730679095f, 0.0369319245f, 0.730679095f, 0.730679095f};
/* [2, 3, 4] */
static const float exp_softmax13_last[] = {0.577952623f, 0.0105855716f, 0.0609157607f, 0.350546002f, 0.024705641f, 0.142171144f, 0.81813848f, 0.0149847297f, 0.024705641f, 0.142171144f, 0.81813848f, 0.0149847297f, 0.133930966f, 0.770719469f, 0.0141162202f, 0.0812332407f, 0.577952623f, 0.0105855716f, 0.0609157607f, 0.350546002f, 0.577952623f, 0.0105855716f, 0.0609157607f, 0.350546002f};
/* [2, 3, 4] */
static const float exp_logsoftmax11[] = {-1.32158184f, -5.32158184f, -3.57158184f, -1.82158184f, -5.82158184f, -4.07158184f, -2.32158184f, -6.32158184f, -4.57158184f, -2.82158184f, -1.07158184f, -5.07158184f, -3.54340243f, -1.79340243f, -5.79340267f, -4.04340267f, -2.29340243f, -6.29340267f, -4.54340267f, -2.79340243f, -1.04340243f, -5.04340267f, -3.29340243f, -1.54340243f};
/* [2, 3, 4] */
static const float exp_logsoftmax13[] = {-0.126928046f, -3.77324533f, -0.126928046f, -0.126928046f, -3.77324533f, -0.126928046f, -0.126928046f, -3.77324533f, -3.77324533f, -0.126928046f, -0.126928046f, -3.77324533f, -2.12692809f, -0.0232454482f, -2.12692809f, -2.12692809f, -0.0232454482f, -2.12692809f, -2.12692809f, -0.0232454482f, -0.0232454482f, -2.12692809f, -2.12692809f, -0.0232454482f};
/* [2, 3, 5] */
static const float exp_ln_y[] = {2.07413697f, -0.62165755f, -2.60683084f, 2.0f, -1.93789494f, 2.79982615f, -5.05702829f, 1.34709108f, 2.0f, 0.241881609f, 2.07413697f, -0.62165755f, -2.60683084f, 2.0f, -1.93789494f, 3.12403679f, -3.68412876f, 0.25f, 2.0f, -4.18412876f, 2.07413697f, -0.62165755f, -2.60683084f, 2.0f, -1.93789494f, 3.12403679f, -3.68412876f, 0.25f, 2.0f, -4.18412876f};
/* [2, 3, 1] */
static const float exp_ln_mean[] = {-0.300000012f, 0.399999976f, -0.0500000007f, -0.5f, 0.200000003f, -0.25f};
/* [2, 3, 1] */
static const float exp_ln_inv[] = {0.709771633f, 0.545138419f, 0.709771633f, 0.554699361f, 0.709771633f, 0.554699361f};
/* [2, 3, 5] */
static const float exp_ln_axis1[] = {1.19192636f, 0.0733493194f, 2.80561137f, 2.21881676f, -0.0f, 1.63202226f, 3.56006145f, 0.241004884f, 0.772787452f, -4.72579193f, 0.796364009f, 0.227906793f, 3.51028872f, 1.66607738f, -0.00261961855f, -1.41589153f, -0.605415642f, -0.417443871f, -1.4695977f, -0.0f, -0.837328911f, -1.23036098f, -0.78606391f, -0.96427083f, -0.698180974f, -1.2791847f, -0.798269868f, -0.0976476818f, -1.47936249f, -0.339325696f};
/* [2, 3, 2, 3] */
static const float exp_bn[] = {-1.38129759f, 1.28778648f, -4.81297731f, -2.143893f, 0.525191069f, -5.57557297f, 3.8108418f, 2.02535057f, 6.10647297f, 4.32098198f, 2.53549099f, 0.75f, 2.5f, 3.28231096f, 4.06462193f, 2.27648258f, 3.05879354f, 3.84110451f, -5.95687056f, -3.28778625f, -0.618702173f, -6.71946573f, -4.05038166f, -1.38129759f, 1.00506997f, 5.08619261f, 3.30070138f, 1.51521039f, 5.59633255f, 3.8108418f, 3.7293458f, 1.94120657f, 2.72351742f, 3.50582838f, 4.28813934f, 2.5f};
/* [2, 3, 2, 3] */
static const float exp_in[] = {-3.79256058f, -2.28457332f, -0.776586056f, -4.22341394f, -2.71542668f, -1.20743942f, 2.09363317f, -1.22393894f, -4.54151106f, 3.04151106f, -0.276061177f, -3.59363341f, 2.45289445f, 1.4186306f, 0.384366691f, -0.649897218f, 1.71413457f, 0.679870665f, -0.738991022f, -3.75786376f, -2.43710685f, -1.11635017f, -4.13522291f, -2.814466f, -1.44182503f, -4.34748983f, 2.29402995f, -0.611635029f, -3.51730013f, 3.12421989f, 0.748427272f, -0.308178186f, 2.10692f, 1.05031455f, -0.00629091263f, 2.40880728f};
/* [2, 1, 4] */
static const float exp_rmean[] = {0.75f, 0.583333313f, -1.5f, 0.25f, -1.25f, 0.5f, 0.333333343f, 0.166666672f};
/* [3] */
static const float exp_rsum[] = {-2.5f, 1.75f, 0.25f};
/* [2, 3, 1] */
static const float exp_rmax[] = {1.25f, 2.5f, 2.0f, 2.75f, 2.25f, 1.75f};
/* [] */
static const float exp_rmin[] = {-2.75f};
/* [3] */
static const float exp_rmean0[] = {-0.3125f, 0.21875f, 0.03125f};

/* The ops below: values from onnx's reference implementation (onnx/reference/ops) on the
 * same generated inputs. */
/* [8] */
static const float exp_att_y[] = {1.01829004f, -1.57050192f, 0.428012937f, -1.61705756f, -0.396110833f, -0.951701462f, 0.505416512f, -1.69460285f};
/* [12] */
static const float exp_att_pk[] = {0.0f, 0.875f, -1.125f, 0.875f, -1.125f, -0.25f, 0.625f, -1.375f, -0.5f, 0.375f, 1.25f, -0.75f};
/* [16] */
static const float exp_att_qk[] = {0.754572511f, 0.245427474f, 0.0f, 0.0f, 0.235940233f, 0.339987785f, 0.424072027f, 0.0f, 0.400972277f, 0.599027693f, 0.0f, 0.0f, 0.202113882f, 0.313040137f, 0.484846026f, 0.0f};
/* [12] */
static const float exp_att3_y[] = {-1.5f, 0.25f, 2.0f, -2.0f, -0.25f, 1.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
/* [8] */
static const float exp_att3_qk[] = {-0.792142868f, -INFINITY, -INFINITY, -INFINITY, -0.130916074f, -INFINITY, -INFINITY, -INFINITY};
/* [1] */
static const float exp_nll[] = {-1.17241383f};
/* [1] */
static const float exp_sce[] = {6.74866867f};
/* [12] */
static const float exp_sce_logp[] = {-2.01043081f, -0.260430843f, -4.26043081f, -2.51043081f, -0.548263371f, -4.54826355f, -2.79826331f, -1.04826331f, -5.43997478f, -3.68997455f, -1.93997455f, -0.189974546f};
/* [6] */
static const float exp_rms[] = {-1.55563235f, -0.530329227f, 0.707105637f, -1.36719561f, -0.79753077f, 0.0f};
/* [3] */
static const float exp_rl2[] = {4.52078533f, 4.39459896f, 4.94974756f};
/* [8] */
static const float exp_rlse[] = {2.51052713f, 2.79867887f, 1.5637809f, 2.0105269f, 1.8137809f, 2.2605269f, 2.54867887f, 1.3137809f};
/* [6] */
static const float exp_rprod[] = {-0.107421875f, -0.0f, -0.241699219f, 0.17578125f, 0.015625f, 0.17578125f};
static const int64_t exp_argmax_last[] = {2, 2, 1, 0, 1, 0, 2, 1};
static const int64_t exp_argmin[] = {0, 3, 2, 2, 1, 3};
/* [6] */
static const float exp_lpnorm[] = {-0.375f, 0.666666687f, 0.550000012f, -0.625f, 0.333333343f, 0.449999988f};

/* A float view of generated data (the expected arrays' inputs, /4). */
static dt_view gview(int rank, const int64_t *dims, int seed)
{
    dt_view v = fview(rank, dims, NULL);
    v.data = gen(dt_view_count(&v), seed, 4.0f);
    return v;
}

static dt_view iview(int64_t n, const int64_t *data) { return view_of(DUCTILE_INT64, 1, &n, data); }

/* check + infer + kernel, inline and on the pool; output `o` must match exp. */
static void expect(const ductile_layer *L, const dt_view *in, int o, int rank,
                   const int64_t *dims, const float *exp)
{
    expect_want(L, in, &(want){.o = o, .dtype = -1, .rank = rank, .dims = dims, .f = exp,
                               .atol = 2e-5, .rtol = 2e-5});
}

#define GVIEW(seed, ...) gview(NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__), seed)
#define EXPECT(L, in, o, exp, ...) expect(L, in, o, NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__), exp)

static void test_global_pools(void)
{
    dt_view in[1] = {GVIEW(0, 1, 3, 3, 5)};
    EXPECT(layer("GlobalAveragePool", 13, 1, in, 1), in, 0, exp_gap, 1, 3, 1, 1);
    in[0] = GVIEW(1, 2, 2, 3, 3);
    EXPECT(layer("GlobalMaxPool", 13, 1, in, 1), in, 0, exp_gmp, 2, 2, 1, 1);
}

static void test_pools(void)
{
    dt_view in[1] = {GVIEW(0, 1, 2, 7, 8)};
    ductile_layer *L = layer("MaxPool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(3, 2), 2);
    a_ints(L, "strides", DIMS(2, 2), 2);
    a_ints(L, "pads", DIMS(1, 0, 1, 1), 4);
    a_int(L, "ceil_mode", 1);
    /* ceil_mode drops the last window along W: it would start in the trailing padding. */
    EXPECT(L, in, 0, exp_maxpool_ceil, 1, 2, 4, 4);

    in[0] = GVIEW(2, 1, 1, 7, 7);
    L = layer("MaxPool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(2, 2), 2);
    a_ints(L, "dilations", DIMS(2, 2), 2);
    EXPECT(L, in, 0, exp_maxpool_dil, 1, 1, 5, 5);

    in[0] = GVIEW(0, 1, 2, 7, 9);
    for (int incl = 0; incl < 2; incl++) {
        L = layer("AveragePool", 13, 1, in, 1);
        a_ints(L, "kernel_shape", DIMS(3, 3), 2);
        a_ints(L, "strides", DIMS(2, 2), 2);
        a_ints(L, "pads", DIMS(1, 1, 1, 1), 4);
        a_int(L, "ceil_mode", 1);
        a_int(L, "count_include_pad", incl);
        EXPECT(L, in, 0, incl ? exp_avgpool_incl : exp_avgpool_excl, 1, 2, 4, 5);
    }

    in[0] = GVIEW(3, 1, 1, 6, 5);
    L = layer("AveragePool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(3, 3), 2);
    a_ints(L, "strides", DIMS(2, 2), 2);
    a_str(L, "auto_pad", "SAME_UPPER");
    EXPECT(L, in, 0, exp_avgpool_same, 1, 1, 3, 3);

    in[0] = GVIEW(4, 1, 2, 9);
    L = layer("MaxPool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(3), 1);
    a_ints(L, "strides", DIMS(2), 1);
    EXPECT(L, in, 0, exp_maxpool_1d, 1, 2, 4);
}

static void test_pool_errors(void)
{
    dt_view in[1] = {GVIEW(0, 1, 2, 7)};
    ductile_layer *L = layer("MaxPool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(3, 3), 2);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "input 0 (X) has shape [1,2,7]; expected rank 4");

    L = layer("AveragePool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(3), 1);
    a_int(L, "ceil_mode", 2);
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED,
                 "attribute 'ceil_mode' = 2 is not supported (supported: 0, 1)");

    L = layer("MaxPool", 13, 1, in, 1);
    a_ints(L, "kernel_shape", DIMS(9), 1);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "spatial dim 0 is 7, smaller than the dilated kernel 9");

    L = layer("MaxPool", 13, 1, in, 2);
    a_ints(L, "kernel_shape", DIMS(3), 1);
    a_int(L, "storage_order", 2);
    expect_error(L, in, DUCTILE_ERR_INVALID_ARGUMENT,
                 "attribute 'storage_order' = 2; expected 0 (row major) or 1 (column major)");

    dt_view h[1] = {in[0]};
    h[0].dtype = DUCTILE_FLOAT16;
    L = layer("MaxPool", 13, 1, h, 2);
    a_ints(L, "kernel_shape", DIMS(3), 1);
    expect_error(L, h, DUCTILE_ERR_UNSUPPORTED,
                 "output 1 (Indices) of MaxPool needs a float32 input 0 (X); it has dtype float16");
}

/* Opset 11+ inputs: X, roi (empty), scales (empty) and sizes, as seg_lraspp passes them. */
static void resize_sizes(int opset, int seed, int rank, const int64_t *in_dims,
                         const int64_t *sizes, const char *mode, const char *ctm,
                         const float *exp)
{
    static const float none[1];
    dt_view in[4] = {gview(rank, in_dims, seed), fview(1, DIMS(0), none), fview(1, DIMS(0), none),
                     iview(rank, sizes)};
    ductile_layer *L = layer("Resize", opset, 4, in, 1);
    a_str(L, "mode", mode);
    if (ctm) a_str(L, "coordinate_transformation_mode", ctm);
    a_float(L, "cubic_coeff_a", -0.75f);
    a_str(L, "nearest_mode", "floor"); /* as exported; ignored by linear */
    if (strcmp(mode, "nearest") == 0) L->n_attr--;
    expect(L, in, 0, rank, sizes, exp);
}

/* Opset 13 with roi omitted and scales given. */
static void resize_scales(int opset, int seed, const int64_t *in_dims, const float *scales,
                          const int64_t *out_dims, const char *mode, const char *ctm,
                          const char *nearest, const float *exp)
{
    dt_view in[3] = {gview(4, in_dims, seed), omitted, fview(1, DIMS(4), scales)};
    int n_in = 3;
    if (opset < 11) {
        in[1] = in[2];
        n_in = 2;
    }
    ductile_layer *L = layer("Resize", opset, n_in, in, 1);
    a_str(L, "mode", mode);
    if (ctm) a_str(L, "coordinate_transformation_mode", ctm);
    if (nearest) a_str(L, "nearest_mode", nearest);
    expect(L, in, 0, 4, out_dims, exp);
}

static void test_resize(void)
{
    /* Up by 11/5 and 9/7, down by 4/11 and 6/13, from run-time sizes. */
    resize_sizes(11, 0, 4, DIMS(1, 2, 5, 7), DIMS(1, 2, 11, 9), "linear", "half_pixel",
                 exp_resize_lin_up);
    resize_sizes(11, 5, 4, DIMS(1, 1, 11, 13), DIMS(1, 1, 4, 6), "linear", "half_pixel",
                 exp_resize_lin_down);
    resize_sizes(13, 7, 4, DIMS(1, 1, 4, 6), DIMS(1, 1, 7, 4), "nearest", NULL, exp_resize_near_rpf);
    resize_sizes(13, 9, 4, DIMS(1, 1, 5, 3), DIMS(1, 1, 1, 7), "linear", "pytorch_half_pixel",
                 exp_resize_pt);
    /* Resizing the channel axis takes the generic N-linear path. */
    resize_sizes(13, 13, 4, DIMS(1, 3, 2, 3), DIMS(1, 5, 3, 3), "linear", NULL, exp_resize_chan);

    /* Sizes from floor(in * scale); the transform uses the scale itself, not out / in. */
    resize_scales(13, 6, DIMS(1, 1, 3, 4), (const float[]){1, 1, 2.5f, 1.5f}, DIMS(1, 1, 7, 6),
                  "nearest", "asymmetric", "floor", exp_resize_near_floor);
    /* align_corners divides by length_resized = 3 * 1.7 = 5.1, not by the 5 outputs (ONNX's
     * definition and reference; onnxruntime divides by 5, so these values are the reference's). */
    resize_scales(13, 8, DIMS(1, 2, 3, 4), (const float[]){1, 1, 1.7f, 2.2f}, DIMS(1, 2, 5, 8),
                  "linear", "align_corners", NULL, exp_resize_align);
    resize_scales(13, 10, DIMS(1, 1, 5, 4), (const float[]){1, 1, 0.6f, 1.75f}, DIMS(1, 1, 3, 7),
                  "nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", exp_resize_tfnn);
    resize_scales(10, 11, DIMS(1, 1, 5, 4), (const float[]){1, 1, 0.6f, 1.75f}, DIMS(1, 1, 3, 7),
                  "nearest", NULL, NULL, exp_resize10_near);
    resize_scales(10, 12, DIMS(1, 1, 3, 4), (const float[]){1, 1, 2.0f, 1.5f}, DIMS(1, 1, 6, 6),
                  "linear", NULL, NULL, exp_resize10_lin);
}

static void test_resize_errors(void)
{
    static const float none[1];
    const float scales[4] = {1, 1, 2, 2};
    dt_view in[4] = {GVIEW(0, 1, 1, 3, 3), omitted, fview(1, DIMS(4), scales), omitted};
    ductile_layer *L = layer("Resize", 13, 3, in, 1);
    a_str(L, "mode", "area");
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED,
                 "attribute 'mode' = 'area' is not supported (supported: nearest, linear, cubic)");

    L = layer("Resize", 13, 3, in, 1);
    a_str(L, "coordinate_transformation_mode", "centre");
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "'coordinate_transformation_mode' = 'centre'");

    /* sizes computed at run time: infer cannot know the shape yet. */
    in[2] = fview(1, DIMS(0), none);
    in[3] = iview(4, NULL);
    L = layer("Resize", 13, 4, in, 1);
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input 3");

    in[3] = iview(3, DIMS(1, 1, 6));
    L = layer("Resize", 13, 4, in, 1);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "input 3 (sizes) has shape [3]; expected [4]");

    in[2] = omitted;
    in[3] = omitted;
    L = layer("Resize", 13, 4, in, 1);
    expect_error(L, in, DUCTILE_ERR_INVALID_ARGUMENT, "neither input 2 (scales) nor input 3 (sizes)");
}

/* The Softmax op runs its lines through FusedAttention's 8-row kernel (dt_cpu_softmax_masked_rows,
 * no mask): the bits of the line kernel (dt_cpu_softmax_line), which the fused attention's
 * other paths use, at lengths around the 16-lane steps, 1 to 8 rows, with logits over
 * [-90, 90], float's lowest (a masked score), -inf, +-0 and a NaN line. */
static void test_softmax_rows_give_the_line_bits(void)
{
    static const int64_t lens[] = {1, 2, 15, 16, 17, 31, 48, 128, 129, 1000};
    int bad = 0, cases = 0;
    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++)
        for (int rows = 1; rows <= 8; rows += 3) {
            int64_t n = lens[c];
            float *x = malloc(sizeof(float) * (size_t)(rows * n)), *a = malloc(sizeof(float) * (size_t)(rows * n));
            float *b = malloc(sizeof(float) * (size_t)(rows * n));
            for (int64_t i = 0; i < rows * n; i++) x[i] = (float)((i * 7919 + 17) % 18001) / 100.0f - 90.0f;
            if (n > 3) x[1] = -FLT_MAX, x[2] = -INFINITY, x[3] = -0.0f;
            if (rows > 1) x[n] = NAN;
            for (int r = 0; r < rows; r++) dt_cpu_softmax_line(x + r * n, a + r * n, n);
            dt_cpu_softmax_masked_rows(x, n, NULL, 0, 0, b, n, n, rows, false);
            for (int64_t i = 0; i < rows * n; i++)
                if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i])) && bad++ < 3)
                    fprintf(stderr, "softmax n=%lld rows=%d at %lld: rows %.9g, line %.9g\n", (long long)n, rows,
                            (long long)i, (double)b[i], (double)a[i]);
            cases++;
            free(x), free(a), free(b);
        }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(cases, 30);
}

static void test_softmax(void)
{
    dt_view in[1] = {GVIEW(14, 2, 3, 4)};
    /* The same axis 1 means rows of 12 (dims 1 and 2 flattened) before opset 13, columns of
     * 3 from 13 on. */
    ductile_layer *L = layer("Softmax", 11, 1, in, 1);
    a_int(L, "axis", 1);
    EXPECT(L, in, 0, exp_softmax11, 2, 3, 4);
    L = layer("Softmax", 13, 1, in, 1);
    a_int(L, "axis", 1);
    EXPECT(L, in, 0, exp_softmax13, 2, 3, 4);
    EXPECT(layer("Softmax", 13, 1, in, 1), in, 0, exp_softmax13_last, 2, 3, 4);
    EXPECT(layer("LogSoftmax", 11, 1, in, 1), in, 0, exp_logsoftmax11, 2, 3, 4);
    L = layer("LogSoftmax", 13, 1, in, 1);
    a_int(L, "axis", 0);
    EXPECT(L, in, 0, exp_logsoftmax13, 2, 3, 4);

    /* Large logits: subtracting the max keeps exp finite. */
    float big[3] = {1000.0f, 999.0f, -1000.0f};
    in[0] = fview(1, DIMS(3), big);
    const float exp_big[3] = {0.73105858f, 0.26894142f, 0.0f};
    EXPECT(layer("Softmax", 13, 1, in, 1), in, 0, exp_big, 3);

    /* Lines of every length around the 16-lane steps of the vectorized exp and sum, with
     * logits over [-20, 20] and a masked one (float's lowest, as attention masks write it),
     * against a double-precision reference; LogSoftmax on the same lines. */
    static const int64_t lens[] = {1, 15, 16, 17, 33, 300};
    for (int c = 0; c < 6; c++) {
        int64_t n = lens[c];
        float *x = keep(malloc(sizeof(float) * (size_t)(2 * n)));
        float *ys = keep(malloc(sizeof(float) * (size_t)(2 * n)));
        float *yl = keep(malloc(sizeof(float) * (size_t)(2 * n)));
        for (int64_t r = 0; r < 2; r++) {
            const float *xr = x + r * n;
            for (int64_t k = 0; k < n; k++) x[r * n + k] = (float)((k * 7919 + r * 31) % 4001) / 100.0f - 20.0f;
            if (n > 2) x[r * n + n / 2] = -FLT_MAX;
            double m = -INFINITY, sum = 0;
            for (int64_t k = 0; k < n; k++) m = xr[k] > m ? xr[k] : m;
            for (int64_t k = 0; k < n; k++) sum += exp((double)xr[k] - m);
            for (int64_t k = 0; k < n; k++) {
                ys[r * n + k] = (float)(exp((double)xr[k] - m) / sum);
                yl[r * n + k] = (float)((double)xr[k] - m - log(sum));
            }
        }
        in[0] = fview(2, DIMS(2, n), x);
        EXPECT(layer("Softmax", 13, 1, in, 1), in, 0, ys, 2, n);
        EXPECT(layer("LogSoftmax", 13, 1, in, 1), in, 0, yl, 2, n);
    }

    in[0] = GVIEW(0, 2, 3);
    L = layer("Softmax", 13, 1, in, 1);
    a_int(L, "axis", 2);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "axis 2 is out of range for rank 2");
}

static void test_layernorm(void)
{
    dt_view in[3] = {GVIEW(15, 2, 3, 5), GVIEW(16, 5), GVIEW(17, 5)};
    ductile_layer *L = layer("LayerNormalization", 17, 3, in, 3);
    a_float(L, "epsilon", 1e-5f);
    EXPECT(L, in, 0, exp_ln_y, 2, 3, 5);
    EXPECT(L, in, 1, exp_ln_mean, 2, 3, 1);
    EXPECT(L, in, 2, exp_ln_inv, 2, 3, 1);

    in[1] = GVIEW(18, 3, 5);
    L = layer("LayerNormalization", 17, 2, in, 1);
    a_int(L, "axis", 1);
    a_float(L, "epsilon", 1e-3f);
    EXPECT(L, in, 0, exp_ln_axis1, 2, 3, 5);

    in[1] = GVIEW(18, 4);
    L = layer("LayerNormalization", 17, 2, in, 1);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "input 1 (Scale) has shape [4]; expected the normalized dims [5]");

    /* A constant row has variance 0: epsilon keeps the result finite (all zeros). */
    float flat[6] = {3, 3, 3, 3, 3, 3}, ones[3] = {1, 1, 1};
    const float zeros[6] = {0};
    in[0] = fview(2, DIMS(2, 3), flat);
    in[1] = fview(1, DIMS(3), ones);
    EXPECT(layer("LayerNormalization", 17, 2, in, 1), in, 0, zeros, 2, 3);
}

/* The LayerNorm after a FusedMatMul (dt_cpu_layernorm_rows: 8 rows at a time, phase by phase,
 * on AVX-512) against LayerNormalization's arithmetic written out here (16 lane sums added in
 * order, then the tail; (x - m) * inv * scale, then + B): bit for bit, at odd widths (a
 * 16-float tail, widths under 16), row counts that leave a partial group of 8, with and
 * without B, in place, and split over a pool of 2. */
static void test_layernorm_rows_match_layernorm_bits(void)
{
    static const int64_t shapes[][2] = {{1, 5}, {7, 17}, {21, 250}, {9, 256}, {16, 16}, {3, 1}};
    dt_pool *two;
    CHECK_EQ_INT(dt_pool_create(2, &two), DUCTILE_OK);
    int bad = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int v = 0; v < 4; v++) {
            int64_t rows = shapes[c][0], d = shapes[c][1];
            bool has_b = v & 1, pool = v & 2;
            const float *x = gen(rows * d, 31 + (int)c, 3.0f), *sc = gen(d, 32, 1.0f), *b = gen(d, 33, 0.5f);
            float *got = malloc(sizeof(float) * (size_t)(rows * d)), *want = malloc(sizeof(float) * (size_t)(rows * d));
            memcpy(got, x, sizeof(float) * (size_t)(rows * d));
            dt_cpu_layernorm_rows(got, sc, has_b ? b : NULL, got, rows, d, 1e-5f, pool ? two : NULL);
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = x + r * d;
                float acc[16] = {0}, s = 0.0f;
                int64_t k = 0;
                for (; k + 16 <= d; k += 16)
                    for (int l = 0; l < 16; l++) acc[l] += xr[k + l];
                for (int l = 0; l < 16; l++) s += acc[l];
                for (; k < d; k++) s += xr[k];
                float m = s / (float)d;
                for (int l = 0; l < 16; l++) acc[l] = 0.0f;
                s = 0.0f;
                for (k = 0; k + 16 <= d; k += 16)
                    for (int l = 0; l < 16; l++) {
                        float t = xr[k + l] - m;
                        acc[l] += t * t;
                    }
                for (int l = 0; l < 16; l++) s += acc[l];
                for (; k < d; k++) s += (xr[k] - m) * (xr[k] - m);
                float inv = 1.0f / sqrtf(s / (float)d + 1e-5f);
                for (k = 0; k < d; k++) {
                    float y = (xr[k] - m) * inv * sc[k];
                    want[r * d + k] = has_b ? y + b[k] : y;
                }
            }
            if (memcmp(got, want, sizeof(float) * (size_t)(rows * d)) && bad++ < 3)
                fprintf(stderr, "layernorm rows %lldx%lld B %d pool %d: bits differ\n", (long long)rows,
                        (long long)d, has_b, pool);
            free(got), free(want);
        }
    CHECK_EQ_INT(bad, 0);
    dt_pool_free(two);
}

static void test_batch_instance_norm(void)
{
    float var[3];
    const float *v = gen(3, 23, 4.0f);
    for (int i = 0; i < 3; i++) var[i] = fabsf(v[i]) + 0.5f;
    dt_view in[5] = {GVIEW(19, 2, 3, 2, 3), GVIEW(20, 3), GVIEW(21, 3), GVIEW(22, 3),
                     fview(1, DIMS(3), var)};
    ductile_layer *L = layer("BatchNormalization", 15, 5, in, 1);
    a_float(L, "epsilon", 1e-3f);
    EXPECT(L, in, 0, exp_bn, 2, 3, 2, 3);
    L = layer("BatchNormalization", 15, 5, in, 1);
    a_int(L, "training_mode", 2);
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "attribute 'training_mode' = 2 is not supported");

    dt_view xin[3] = {GVIEW(24, 2, 3, 2, 3), GVIEW(25, 3), GVIEW(26, 3)};
    L = layer("InstanceNormalization", 6, 3, xin, 1);
    a_float(L, "epsilon", 1e-4f);
    EXPECT(L, xin, 0, exp_in, 2, 3, 2, 3);
    xin[1] = GVIEW(25, 4);
    expect_error(L, xin, DUCTILE_ERR_SHAPE, "input 1 (scale) has shape [4]; expected [3] (dim 1 of X)");
}

static void test_reduce(void)
{
    dt_view in[2] = {GVIEW(27, 2, 3, 4), omitted};
    ductile_layer *L = layer("ReduceMean", 13, 1, in, 1);
    a_ints(L, "axes", DIMS(1), 1);
    EXPECT(L, in, 0, exp_rmean, 2, 1, 4);

    in[1] = iview(2, DIMS(0, 2));
    L = layer("ReduceSum", 13, 2, in, 1);
    a_int(L, "keepdims", 0);
    EXPECT(L, in, 0, exp_rsum, 3);

    L = layer("ReduceMax", 13, 1, in, 1);
    a_ints(L, "axes", DIMS(-1), 1);
    EXPECT(L, in, 0, exp_rmax, 2, 3, 1);

    /* No axes: every axis, down to a scalar. */
    L = layer("ReduceMin", 13, 1, in, 1);
    a_int(L, "keepdims", 0);
    expect(L, in, 0, 0, NULL, exp_rmin);

    L = layer("ReduceMean", 13, 1, in, 1);
    a_ints(L, "axes", DIMS(0, 2), 2);
    a_int(L, "keepdims", 0);
    EXPECT(L, in, 0, exp_rmean0, 3);

    /* ReduceSum with empty axes and noop_with_empty_axes copies its input. */
    in[1] = iview(0, NULL);
    L = layer("ReduceSum", 13, 2, in, 1);
    a_int(L, "noop_with_empty_axes", 1);
    EXPECT(L, in, 0, in[0].data, 2, 3, 4);

    L = layer("ReduceMax", 13, 1, in, 1);
    a_ints(L, "axes", DIMS(1, -2), 2);
    expect_error(L, in, DUCTILE_ERR_INVALID_ARGUMENT, "axes[1] = -2 repeats axis 1");
    L = layer("ReduceMax", 13, 1, in, 1);
    a_ints(L, "axes", DIMS(3), 1);
    expect_error(L, in, DUCTILE_ERR_SHAPE, "axes[0]: axis 3 is out of range for rank 3");

    in[1] = iview(1, NULL);
    L = layer("ReduceSum", 13, 2, in, 1);
    expect_error(L, in, DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input 1");
}

/* An int64 view of any rank. */
static dt_view i64view(int rank, const int64_t *dims, const int64_t *data)
{
    dt_view v = {.dtype = DUCTILE_INT64, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i];
    return v;
}

/* A float view of generated data times `mul`. */
static dt_view gview_scaled(int rank, const int64_t *dims, int seed, float mul)
{
    dt_view v = gview(rank, dims, seed);
    float *x = v.data;
    for (int64_t i = 0; i < dt_view_count(&v); i++) x[i] *= mul;
    return v;
}

/* check + infer + kernel; int64 output `o` must equal exp. */
static void expect_i64(const ductile_layer *L, const dt_view *in, int o, int rank,
                       const int64_t *dims, const int64_t *exp)
{
    dt_view out[4] = {{0}};
    ductile_status st = build(L, in, out);
    if (st != DUCTILE_OK) fprintf(stderr, "%s: %s\n", L->op_type, dt_last_error());
    CHECK_EQ_INT(st, DUCTILE_OK);
    if (st != DUCTILE_OK) return;
    CHECK_EQ_INT(out[o].rank, rank);
    for (int i = 0; i < rank && i < out[o].rank; i++) CHECK_EQ_INT(out[o].dims[i], dims[i]);
    for (int i = 0; i < L->n_out; i++)
        out[i].data = keep(calloc((size_t)dt_view_count(&out[i]) + 1, 8));
    dt_exec ex = {.pool = pool};
    CHECK_EQ_INT(kernel(L->op_type)(L, in, out, &ex), DUCTILE_OK);
    const int64_t *y = out[o].data;
    for (int64_t i = 0; i < dt_view_count(&out[o]); i++)
        if (y[i] != exp[i]) {
            fprintf(stderr, "%s: element %lld is %lld, expected %lld\n", L->op_type, (long long)i,
                    (long long)y[i], (long long)exp[i]);
            CHECK(0);
            return;
        }
}

static void test_attention(void)
{
    /* 4-D, two query heads sharing one kv head, a past of 1 key, a float mask covering 3 of
     * the 4 keys (the 4th is masked), causal from offset 1, probabilities as output 3. */
    dt_view in[6] = {gview_scaled(4, DIMS(1, 2, 2, 3), 30, 0.5f), gview_scaled(4, DIMS(1, 1, 3, 3), 31, 0.5f),
                     GVIEW(32, 1, 1, 3, 2), gview_scaled(2, DIMS(2, 3), 35, 0.25f),
                     gview_scaled(4, DIMS(1, 1, 1, 3), 33, 0.5f), GVIEW(34, 1, 1, 1, 2)};
    ductile_layer *L = layer("Attention", 23, 6, in, 4);
    a_int(L, "is_causal", 1);
    a_int(L, "qk_matmul_output_mode", 3);
    EXPECT(L, in, 0, exp_att_y, 1, 2, 2, 2);
    EXPECT(L, in, 1, exp_att_pk, 1, 1, 4, 3);
    EXPECT(L, in, 3, exp_att_qk, 1, 2, 2, 4);

    /* 3-D [B, S, H * D] read in place; soft-capped scores plus the bias as output 3; a bool
     * mask whose second row masks every key gives that row 0. */
    static const uint8_t bmask[4] = {1, 0, 0, 0};
    dt_view in3[4] = {GVIEW(36, 1, 2, 4), GVIEW(37, 1, 2, 4), GVIEW(38, 1, 2, 6),
                      {.dtype = DUCTILE_BOOL, .rank = 2, .dims = {2, 2}, .data = (void *)bmask}};
    L = layer("Attention", 23, 4, in3, 4);
    a_int(L, "q_num_heads", 2);
    a_int(L, "kv_num_heads", 2);
    a_float(L, "scale", 0.3f);
    a_float(L, "softcap", 1.5f);
    a_int(L, "qk_matmul_output_mode", 2);
    EXPECT(L, in3, 0, exp_att3_y, 1, 2, 6);
    dt_view out[4] = {{0}};
    CHECK_EQ_INT(build(L, in3, out), DUCTILE_OK);
    float qk[8];
    out[0].data = keep(calloc(12, sizeof(float)));
    out[1].data = keep(calloc(8, sizeof(float)));
    out[2].data = keep(calloc(12, sizeof(float)));
    out[3].data = qk;
    dt_exec ex = {.pool = NULL};
    CHECK_EQ_INT(kernel("Attention")(L, in3, out, &ex), DUCTILE_OK);
    for (int i = 0; i < 8; i++)
        CHECK(isinf(exp_att3_qk[i]) ? qk[i] == exp_att3_qk[i] : fabsf(qk[i] - exp_att3_qk[i]) < 1e-5f);

    /* 3 query heads cannot share 2 kv heads. */
    dt_view bad[3] = {GVIEW(0, 1, 3, 2, 4), GVIEW(0, 1, 2, 2, 4), GVIEW(0, 1, 2, 2, 4)};
    L = layer("Attention", 23, 3, bad, 1);
    expect_error(L, bad, DUCTILE_ERR_SHAPE, "3 query heads cannot be grouped over 2 key/value heads");
    bad[2] = GVIEW(0, 1, 2, 3, 4);
    L = layer("Attention", 23, 3, bad, 1);
    expect_error(L, bad, DUCTILE_ERR_SHAPE, "input 2 (V) has shape [1,2,3,4]; expected the sequence length of K");
    L = layer("Attention", 23, 3, in3, 1);
    expect_error(L, in3, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'q_num_heads' = 0; 3-D inputs need a positive head count");
}

static void test_losses(void)
{
    float w[3];
    const float *g = gen(3, 41, 4.0f);
    for (int i = 0; i < 3; i++) w[i] = fabsf(g[i]) + 0.5f;
    static const int64_t target[4] = {0, 1, 2, 2};
    dt_view in[3] = {GVIEW(40, 2, 3, 2), i64view(2, DIMS(2, 2), target), fview(1, DIMS(3), w)};
    ductile_layer *L = layer("NegativeLogLikelihoodLoss", 22, 3, in, 1);
    a_str(L, "reduction", "mean");
    a_int(L, "ignore_index", 1);
    expect(L, in, 0, 0, NULL, exp_nll);

    static const int64_t t2[3] = {3, 0, 1};
    dt_view sin[2] = {GVIEW(42, 3, 4), i64view(1, DIMS(3), t2)};
    L = layer("SoftmaxCrossEntropyLoss", 13, 2, sin, 2);
    a_str(L, "reduction", "sum");
    expect(L, sin, 0, 0, NULL, exp_sce);
    EXPECT(L, sin, 1, exp_sce_logp, 3, 4);

    /* A class outside 0..C-1 is an error of the run, not a wild read. */
    static const int64_t t3[3] = {3, 4, 1};
    sin[1] = i64view(1, DIMS(3), t3);
    L = layer("SoftmaxCrossEntropyLoss", 13, 2, sin, 1);
    dt_view out[1] = {{0}};
    CHECK_EQ_INT(build(L, sin, out), DUCTILE_OK);
    float y;
    out[0].data = &y;
    dt_exec ex = {.pool = NULL};
    CHECK_EQ_INT(kernel(L->op_type)(L, sin, out, &ex), DUCTILE_ERR_INVALID_ARGUMENT);
    CHECK(strstr(dt_last_error(), "target element 1 is 4, outside the classes 0..3") != NULL);

    sin[1] = i64view(1, DIMS(2), t3);
    expect_error(L, sin, DUCTILE_ERR_SHAPE, "input 1 (target) has shape [2]; expected input's shape [3,4] without dim 1");
}

static void test_rms_and_reductions(void)
{
    dt_view in[2] = {GVIEW(43, 2, 3), GVIEW(44, 3)};
    EXPECT(layer("RMSNormalization", 23, 2, in, 1), in, 0, exp_rms, 2, 3);

    dt_view r[2] = {GVIEW(45, 2, 3, 4), iview(2, DIMS(0, 2))};
    ductile_layer *L = layer("ReduceL2", 18, 2, r, 1);
    a_int(L, "keepdims", 0);
    EXPECT(L, r, 0, exp_rl2, 3);
    r[1] = iview(1, DIMS(1));
    EXPECT(layer("ReduceLogSumExp", 18, 2, r, 1), r, 0, exp_rlse, 2, 1, 4);
    r[0] = gview_scaled(3, DIMS(2, 3, 4), 45, 0.5f);
    L = layer("ReduceProd", 13, 1, r, 1);
    a_ints(L, "axes", DIMS(2), 1);
    a_int(L, "keepdims", 0);
    EXPECT(L, r, 0, exp_rprod, 2, 3);

    /* Over an empty axis: the identity of the fold. */
    float none[1];
    dt_view e[2] = {fview(2, DIMS(2, 0), none), iview(1, DIMS(1))};
    const float neg_inf[2] = {-INFINITY, -INFINITY}, ones[2] = {1, 1};
    dt_view out[1] = {{0}};
    L = layer("ReduceMax", 18, 2, e, 1);
    CHECK_EQ_INT(build(L, e, out), DUCTILE_OK);
    float y[2];
    out[0].data = y;
    dt_exec ex = {.pool = NULL};
    CHECK_EQ_INT(kernel("ReduceMax")(L, e, out, &ex), DUCTILE_OK);
    CHECK(y[0] == neg_inf[0] && y[1] == neg_inf[1]);
    EXPECT(layer("ReduceProd", 18, 2, e, 1), e, 0, ones, 2, 1);
}

static void test_axis_ops(void)
{
    dt_view in[2] = {GVIEW(46, 2, 3, 4)};
    float *x = in[0].data;
    x[4] = x[8] = 9; /* [0, 1, 0] and [0, 2, 0]: a tie, the last index wins */
    ductile_layer *L = layer("ArgMax", 13, 1, in, 1);
    a_int(L, "axis", 1);
    a_int(L, "select_last_index", 1);
    expect_i64(L, in, 0, 3, DIMS(2, 1, 4), exp_argmax_last);
    L = layer("ArgMin", 13, 1, in, 1);
    a_int(L, "axis", -1);
    a_int(L, "keepdims", 0);
    expect_i64(L, in, 0, 2, DIMS(2, 3), exp_argmin);

    const float hx[6] = {1, 3, 3, 0, -1, -2}, hy[6] = {0, 1, 0, 1, 0, 0};
    in[0] = fview(2, DIMS(2, 3), hx);
    EXPECT(layer("Hardmax", 13, 1, in, 1), in, 0, hy, 2, 3);

    in[0] = GVIEW(47, 2, 3);
    L = layer("LpNormalization", 22, 1, in, 1);
    a_int(L, "axis", 0);
    a_int(L, "p", 1);
    EXPECT(L, in, 0, exp_lpnorm, 2, 3);

    /* CumSum over int32, exclusive and reversed, axis from a run-time input. */
    static const int32_t cx[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t axis1[1] = {-1};
    dt_view cin[2] = {{.dtype = DUCTILE_INT32, .rank = 2, .dims = {2, 3}, .data = (void *)cx},
                      i64view(0, NULL, NULL)};
    L = layer("CumSum", 14, 2, cin, 1);
    a_int(L, "exclusive", 1);
    a_int(L, "reverse", 1);
    dt_view out[2] = {{0}};
    CHECK_EQ_INT(build(L, cin, out), DUCTILE_OK); /* the axis is not known yet: fine */
    cin[1].data = (void *)axis1;
    int32_t cy[6];
    out[0].data = cy;
    dt_exec ex = {.pool = pool};
    CHECK_EQ_INT(kernel("CumSum")(L, cin, out, &ex), DUCTILE_OK);
    static const int32_t cexp[6] = {5, 3, 0, 11, 6, 0};
    CHECK(memcmp(cy, cexp, sizeof cexp) == 0);

    /* TopK, smallest 2 along axis 1; ties keep the lower index. */
    const float tx[8] = {3, 1, 1, 2, 0, 5, 0, -1};
    static const int64_t k2[1] = {2};
    const float tv[4] = {1, 1, -1, 0};
    static const int64_t ti[4] = {1, 2, 3, 0};
    dt_view tin[2] = {fview(2, DIMS(2, 4), tx), iview(1, k2)};
    L = layer("TopK", 11, 2, tin, 2);
    a_int(L, "largest", 0);
    EXPECT(L, tin, 0, tv, 2, 2);
    expect_i64(L, tin, 1, 2, DIMS(2, 2), ti);
    tin[1] = iview(1, NULL);
    expect_error(L, tin, DUCTILE_ERR_UNSUPPORTED, "the output shape depends on the data of input 1");
    tin[1] = iview(1, DIMS(5));
    expect_error(L, tin, DUCTILE_ERR_SHAPE, "K = 5 is outside 0..4 (dim 1 of X)");
}

/* Refusals from the attributes alone happen in the kernels' prepare, once per layer. */
static void test_compiled_refusals(void)
{
    ductile_layer *L = layer("ReduceMean", 13, 1, NULL, 1);
    a_ints(L, "axes", DIMS(0, 1, 2, 3, 4, 5, 6, 7, 0), 9);
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axes' has 9 entries; a tensor has at most 8 dims");
    L = layer("NegativeLogLikelihoodLoss", 13, 2, NULL, 1);
    a_str(L, "reduction", "avg");
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'reduction' = 'avg' is not one of none, sum, mean");
    L = layer("SoftmaxCrossEntropyLoss", 13, 2, NULL, 2);
    a_str(L, "reduction", "max");
    expect_prepare_error(L, DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'reduction' = 'max' is not one of none, sum, mean");
}

int main(void)
{
    if (ophelp_begin()) return 1;
    test_compiled_refusals();
    test_global_pools();
    test_pools();
    test_pool_errors();
    test_resize();
    test_resize_errors();
    test_softmax();
    test_softmax_rows_give_the_line_bits();
    test_layernorm();
    test_layernorm_rows_match_layernorm_bits();
    test_batch_instance_norm();
    test_reduce();
    test_attention();
    test_losses();
    test_rms_and_reductions();
    test_axis_ops();
    ophelp_end();
    TEST_MAIN_END();
}
