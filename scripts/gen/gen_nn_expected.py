import numpy as np, onnx, onnxruntime as ort
from onnx import helper, TensorProto as TP

def gen(shape, seed):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    return (((i * 7919 + seed * 31) % 23 - 11) / 4.0).astype(np.float32).reshape(shape)

def run(op, opset, inputs, attrs, n_out=1, consts=None, reference=False):
    # reference: ONNX's reference evaluator instead of onnxruntime, where the two differ
    # (Resize at scales that do not divide the dims: onnx/onnx#2462)
    # inputs: list of (name, array or None); consts: initializers names
    names = []
    ins = []
    inits = []
    feeds = {}
    for k, (nm, arr) in enumerate(inputs):
        if arr is None:
            names.append(""); continue
        names.append(nm)
        if arr.dtype == np.float32 and nm in ('X',):
            ins.append(helper.make_tensor_value_info(nm, TP.FLOAT, arr.shape)); feeds[nm] = arr
        else:
            inits.append(onnx.numpy_helper.from_array(arr, nm))
    outs = ['Y%d' % i for i in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    g = helper.make_graph([node], 'g', ins, [helper.make_tensor_value_info(o, TP.FLOAT, None) for o in outs], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    m.ir_version = 8
    if reference:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(m).run(None, feeds)
    s = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])
    return s.run(None, feeds)

def emit(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    def lit(v):
        t = '%.9g' % v
        if '.' not in t and 'e' not in t: t += '.0'
        return t + 'f'
    vals = ', '.join(lit(v) for v in arr.ravel())
    print('/* %s */' % (list(arr.shape),))
    print('static const float %s[] = {%s};' % (name, vals))

X = lambda shape, seed=0: ('X', gen(shape, seed))
I64 = lambda v: np.array(v, dtype=np.int64)
F32 = lambda v: np.array(v, dtype=np.float32)

# pools
emit('exp_gap', run('GlobalAveragePool', 13, [X([1,3,3,5])], {})[0])
emit('exp_gmp', run('GlobalMaxPool', 13, [X([2,2,3,3], 1)], {})[0])
emit('exp_maxpool_ceil', run('MaxPool', 13, [X([1,2,7,8])], dict(kernel_shape=[3,2], strides=[2,2], pads=[1,0,1,1], ceil_mode=1))[0])
emit('exp_maxpool_dil', run('MaxPool', 13, [X([1,1,7,7], 2)], dict(kernel_shape=[2,2], dilations=[2,2]))[0])
emit('exp_avgpool_excl', run('AveragePool', 13, [X([1,2,7,9])], dict(kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1], ceil_mode=1, count_include_pad=0))[0])
emit('exp_avgpool_incl', run('AveragePool', 13, [X([1,2,7,9])], dict(kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1], ceil_mode=1, count_include_pad=1))[0])
emit('exp_avgpool_same', run('AveragePool', 13, [X([1,1,6,5], 3)], dict(kernel_shape=[3,3], strides=[2,2], auto_pad='SAME_UPPER'))[0])
emit('exp_maxpool_1d', run('MaxPool', 13, [X([1,2,9], 4)], dict(kernel_shape=[3], strides=[2]))[0])
# resize
E = np.zeros([0], np.float32)
emit('exp_resize_lin_up', run('Resize', 11, [X([1,2,5,7]), ('roi', E), ('scales', E), ('sizes', I64([1,2,11,9]))], dict(mode='linear', coordinate_transformation_mode='half_pixel'))[0])
emit('exp_resize_lin_down', run('Resize', 11, [X([1,1,11,13], 5), ('roi', E), ('scales', E), ('sizes', I64([1,1,4,6]))], dict(mode='linear', coordinate_transformation_mode='half_pixel'))[0])
emit('exp_resize_near_floor', run('Resize', 13, [X([1,1,3,4], 6), ('roi', None), ('scales', F32([1,1,2.5,1.5]))], dict(mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'))[0])
emit('exp_resize_near_rpf', run('Resize', 13, [X([1,1,4,6], 7), ('roi', None), ('scales', None), ('sizes', I64([1,1,7,4]))], dict(mode='nearest'))[0])
emit('exp_resize_align', run('Resize', 13, [X([1,2,3,4], 8), ('roi', None), ('scales', F32([1,1,1.7,2.2]))], dict(mode='linear', coordinate_transformation_mode='align_corners'), reference=True)[0])
emit('exp_resize_pt', run('Resize', 13, [X([1,1,5,3], 9), ('roi', None), ('scales', None), ('sizes', I64([1,1,1,7]))], dict(mode='linear', coordinate_transformation_mode='pytorch_half_pixel'))[0])
emit('exp_resize_tfnn', run('Resize', 13, [X([1,1,5,4], 10), ('roi', None), ('scales', F32([1,1,0.6,1.75]))], dict(mode='nearest', coordinate_transformation_mode='tf_half_pixel_for_nn', nearest_mode='round_prefer_ceil'))[0])
emit('exp_resize10_near', run('Resize', 10, [X([1,1,5,4], 11), ('scales', F32([1,1,0.6,1.75]))], dict(mode='nearest'))[0])
emit('exp_resize10_lin', run('Resize', 10, [X([1,1,3,4], 12), ('scales', F32([1,1,2.0,1.5]))], dict(mode='linear'))[0])
emit('exp_resize_chan', run('Resize', 13, [X([1,3,2,3], 13), ('roi', None), ('scales', None), ('sizes', I64([1,5,3,3]))], dict(mode='linear'))[0])
# softmax
emit('exp_softmax11', run('Softmax', 11, [X([2,3,4], 14)], dict(axis=1))[0])
emit('exp_softmax13', run('Softmax', 13, [X([2,3,4], 14)], dict(axis=1))[0])
emit('exp_softmax13_last', run('Softmax', 13, [X([2,3,4], 14)], {})[0])
emit('exp_logsoftmax11', run('LogSoftmax', 11, [X([2,3,4], 14)], {})[0])
emit('exp_logsoftmax13', run('LogSoftmax', 13, [X([2,3,4], 14)], dict(axis=0))[0])
# layernorm
ln = run('LayerNormalization', 17, [X([2,3,5], 15), ('S', gen([5], 16)), ('B', gen([5], 17))], dict(epsilon=1e-5), n_out=3)
emit('exp_ln_y', ln[0]); emit('exp_ln_mean', ln[1]); emit('exp_ln_inv', ln[2])
emit('exp_ln_axis1', run('LayerNormalization', 17, [X([2,3,5], 15), ('S', gen([3,5], 18))], dict(axis=1, epsilon=1e-3))[0])
emit('exp_bn', run('BatchNormalization', 15, [X([2,3,2,3], 19), ('s', gen([3],20)), ('b', gen([3],21)), ('m', gen([3],22)), ('v', np.abs(gen([3],23)) + 0.5)], dict(epsilon=1e-3))[0])
emit('exp_in', run('InstanceNormalization', 6, [X([2,3,2,3], 24), ('s', gen([3],25)), ('b', gen([3],26))], dict(epsilon=1e-4))[0])
# reduce
emit('exp_rmean', run('ReduceMean', 13, [X([2,3,4], 27)], dict(axes=[1]))[0])
emit('exp_rsum', run('ReduceSum', 13, [X([2,3,4], 27), ('axes', I64([0,2]))], dict(keepdims=0))[0])
emit('exp_rmax', run('ReduceMax', 13, [X([2,3,4], 27)], dict(axes=[-1]))[0])
emit('exp_rmin', run('ReduceMin', 13, [X([2,3,4], 27)], dict(keepdims=0))[0])
emit('exp_rmean0', run('ReduceMean', 13, [X([2,3,4], 27)], dict(axes=[0, 2], keepdims=0))[0])
