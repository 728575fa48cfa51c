// Every custom assembly form StableHLO and CHLO define (StablehloOps.td, ChloOps.td), written as
// stablehlo-opt prints them and by hand, with line breaks and comments in odd places.
module @pretty_forms {
  func.func @nullary() -> (tensor<4x5xi32>, !stablehlo.token, tensor<ui32>, tensor<ui32>, tensor<2xf32>) {
    %iota = stablehlo.iota dim = 0 : tensor<4x5xi32>
    %tok = stablehlo.create_token : !stablehlo.token
    %r = stablehlo.replica_id : tensor<ui32>
    %p = stablehlo.partition_id : tensor<ui32>
    %c = stablehlo.constant dense<[0.0, 1.5]> : tensor<2xf32>
    return %iota, %tok, %r, %p, %c : tensor<4x5xi32>, !stablehlo.token, tensor<ui32>, tensor<ui32>, tensor<2xf32>
  }
  func.func @unary(%x: tensor<4xf32>, %i: tensor<4xi32>, %z: tensor<4xcomplex<f32>>) -> tensor<4xf32> {
    %0 = stablehlo.abs %x : tensor<4xf32>
    %1 = stablehlo.cbrt %0 : tensor<4xf32>
    %2 = stablehlo.ceil %1 : tensor<4xf32>
    %3 = stablehlo.convert %i : (tensor<4xi32>) -> tensor<4xf32>
    %4 = stablehlo.count_leading_zeros %i : tensor<4xi32>
    %5 = stablehlo.cosine %3 : tensor<4xf32>
    %6 = stablehlo.exponential %5 : tensor<4xf32>
    %7 = stablehlo.exponential_minus_one %6 : tensor<4xf32>
    %8 = stablehlo.floor %7 : tensor<4xf32>
    %9 = stablehlo.imag %z : (tensor<4xcomplex<f32>>) -> tensor<4xf32>
    %10 = stablehlo.is_finite %9 : (tensor<4xf32>) -> tensor<4xi1>
    %11 = stablehlo.log %8 : tensor<4xf32>
    %12 = stablehlo.log_plus_one %11 : tensor<4xf32>
    %13 = stablehlo.logistic %12 : tensor<4xf32>
    %14 = stablehlo.not %10 : tensor<4xi1>
    %15 = stablehlo.negate %13 : tensor<4xf32>
    %16 = stablehlo.popcnt %4 : tensor<4xi32>
    %17 = stablehlo.real %z : (tensor<4xcomplex<f32>>) -> tensor<4xf32>
    %18 = stablehlo.round_nearest_afz %17 : tensor<4xf32>
    %19 = stablehlo.round_nearest_even %18 : tensor<4xf32>
    %20 = stablehlo.rsqrt %19 : tensor<4xf32>
    %21 = stablehlo.sign %20 : tensor<4xf32>
    %22 = stablehlo.sine %21 : tensor<4xf32>
    %23 = stablehlo.sqrt %22 : tensor<4xf32>
    %24 = stablehlo.tan %23 : tensor<4xf32>
    %25 = stablehlo.tanh %24 : tensor<4xf32>
    %26 = stablehlo.exponential %25 {result_accuracy = #stablehlo.result_accuracy<ulps = 1, mode = #stablehlo.result_accuracy_mode<TOLERANCE>>} : tensor<4xf32>
    %27 = stablehlo.reduce_precision %26, format = e5m10 : tensor<4xf32>
    return %27 : tensor<4xf32>
  }
  func.func @binary(%a: tensor<4xf32>, %b: tensor<4xf32>, %i: tensor<4xi32>, %p: tensor<4xi1>) -> tensor<4xf32> {
    %0 = stablehlo.add %a, %b : tensor<4xf32>
    %1 = stablehlo.atan2 %0, %b : tensor<4xf32>
    %2 = stablehlo.complex %0, %1 : tensor<4xcomplex<f32>>
    %3 = stablehlo.divide %1, %b : tensor<4xf32>
    %4 = stablehlo.maximum %3, %b : tensor<4xf32>
    %5 = stablehlo.minimum %4, %b : tensor<4xf32>
    %6 = stablehlo.multiply %5, %b : tensor<4xf32>
    %7 = stablehlo.power %6, %b : tensor<4xf32>
    %8 = stablehlo.remainder %7, %b : tensor<4xf32>
    %9 = stablehlo.shift_left %i, %i : tensor<4xi32>
    %10 = stablehlo.shift_right_arithmetic %9, %i : tensor<4xi32>
    %11 = stablehlo.shift_right_logical %10, %i : tensor<4xi32>
    %12 = stablehlo.subtract %8, %b : tensor<4xf32>
    %13 = stablehlo.and %p, %p : tensor<4xi1>
    %14 = stablehlo.or %13, %p : tensor<4xi1>
    %15 = stablehlo.xor %14, %p : tensor<4xi1>
    %16 = stablehlo.compare  GT, %12, %b,  FLOAT : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
    %17 = stablehlo.compare  EQ, %i, %11 : (tensor<4xi32>, tensor<4xi32>) -> tensor<4xi1>
    %18 = stablehlo.select %16, %12, %b : tensor<4xi1>, tensor<4xf32>
    %19 = stablehlo.select %17, %18, %a : (tensor<4xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %lo = stablehlo.constant dense<-1.0> : tensor<f32>
    %20 = stablehlo.clamp %lo, %19, %b : (tensor<f32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %21 = stablehlo.clamp %a, %20, %b : tensor<4xf32>
    return %21 : tensor<4xf32>
  }
  func.func @shapes(%x: tensor<2x3xf32>, %i: tensor<i32>, %s: tensor<2xi64>) -> tensor<6xf32> {
    %0 = stablehlo.broadcast_in_dim %x, dims = [1, 2] : (tensor<2x3xf32>) -> tensor<4x2x3xf32>
    %1 = stablehlo.broadcast %x, sizes = [5] : (tensor<2x3xf32>) -> tensor<5x2x3xf32>
    %2 = stablehlo.transpose %x, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %3 = stablehlo.reverse %x, dims = [0, 1] : tensor<2x3xf32>
    %4 = stablehlo.reshape %x : (tensor<2x3xf32>) -> tensor<6xf32>
    %5 = stablehlo.slice %4 [1:5:2] : (tensor<6xf32>) -> tensor<2xf32>
    %6 = stablehlo.slice %x [0:2, 1:3] : (tensor<2x3xf32>) -> tensor<2x2xf32>
    %7 = stablehlo.dynamic_slice %x, %i, %i, sizes = [1, 2] : (tensor<2x3xf32>, tensor<i32>, tensor<i32>) -> tensor<1x2xf32>
    %8 = stablehlo.dynamic_update_slice %x, %7, %i, %i : (tensor<2x3xf32>, tensor<1x2xf32>, tensor<i32>, tensor<i32>) -> tensor<2x3xf32>
    %9 = stablehlo.concatenate %x, %3, dim = 0 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %10 = stablehlo.pad %x, %zero, low = [0, 1], high = [2, -1], interior = [1, 0] : (tensor<2x3xf32>, tensor<f32>) -> tensor<5x3xf32>
    %11 = stablehlo.get_dimension_size %x, dim = 1 : (tensor<2x3xf32>) -> tensor<i32>
    %12 = stablehlo.dynamic_iota %s, dim = 0 : (tensor<2xi64>) -> tensor<2x3xi32>
    %13 = stablehlo.dynamic_reshape %x, %s : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>
    %14 = stablehlo.dynamic_broadcast_in_dim %x, %s, dims = [0, 1] : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
    %15 = stablehlo.bitcast_convert %x : (tensor<2x3xf32>) -> tensor<2x3xi32>
    %16 = stablehlo.set_dimension_size %x, %11, dim = 1 : (tensor<2x3xf32>, tensor<i32>) -> tensor<2x3xf32>
    %17 = stablehlo.dynamic_pad %x, %zero, %s, %s, %s : (tensor<2x3xf32>, tensor<f32>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<4x5xf32>
    return %4 : tensor<6xf32>
  }
  func.func @products(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>, %m: tensor<3x4xf32>, %n: tensor<4x5xf32>) -> tensor<2x3x5xf32> {
    %0 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1] : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    %1 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1], precision = [DEFAULT, HIGHEST] : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    %2 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1], algorithm = <lhs_precision_type = tf32, rhs_precision_type = tf32, accumulation_type = f32, lhs_component_count = 1, rhs_component_count = 1, num_primitive_operations = 3, allow_imprecise_accumulation = false> : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    %3 = stablehlo.dot_general %m, %n, contracting_dims = [1] x [0] : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
    %4 = stablehlo.dot %m, %n : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
    %5 = stablehlo.dot %m, %n, precision = [HIGH, HIGH] : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
    %6 = stablehlo.einsum %m, %n, config = "ab,bc->ac" : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
    %7 = stablehlo.unary_einsum %m, config = "ab->ba" : (tensor<3x4xf32>) -> tensor<4x3xf32>
    return %0 : tensor<2x3x5xf32>
  }
  func.func @convolutions(%lhs: tensor<1x8x8x2xf32>, %rhs: tensor<3x3x2x4xf32>, %pad: tensor<2x2xi64>) -> tensor<1x4x4x4xf32> {
    %0 = stablehlo.convolution(%lhs, %rhs) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [2, 2], pad = [[1, 1], [1, 1]], lhs_dilate = [1, 1], rhs_dilate = [1, 1], reverse = [false, false]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]} : (tensor<1x8x8x2xf32>, tensor<3x3x2x4xf32>) -> tensor<1x4x4x4xf32>
    %1 = stablehlo.convolution(%lhs, %rhs) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [2, 2]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x8x8x2xf32>, tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32>
    %2 = "stablehlo.dynamic_conv"(%lhs, %rhs, %pad) {dimension_numbers = #stablehlo.conv<[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]>, window_strides = array<i64: 2, 2>, lhs_dilation = array<i64: 1, 1>, rhs_dilation = array<i64: 1, 1>, window_reversal = array<i1: false, false>, feature_group_count = 1 : i64, batch_group_count = 1 : i64} : (tensor<1x8x8x2xf32>, tensor<3x3x2x4xf32>, tensor<2x2xi64>) -> tensor<1x4x4x4xf32>
    return %0 : tensor<1x4x4x4xf32>
  }
  func.func @regions(%x: tensor<1x6xi64>, %init: tensor<i64>, %n: tensor<i64>) -> tensor<1xi64> {
    %0 = stablehlo.reduce(%x init: %init) applies stablehlo.add across dimensions = [1] : (tensor<1x6xi64>, tensor<i64>) -> tensor<1xi64>
    %1 = stablehlo.reduce(%x init: %init) across dimensions = [1] : (tensor<1x6xi64>, tensor<i64>) -> tensor<1xi64>
     reducer(%arg0: tensor<i64>, %arg1: tensor<i64>)  {
      %m = stablehlo.maximum %arg0, %arg1 : tensor<i64>
      stablehlo.return %m : tensor<i64>
    }
    %2:2 = stablehlo.reduce(%x init: %init), (%x init: %init) across dimensions = [1] : (tensor<1x6xi64>, tensor<1x6xi64>, tensor<i64>, tensor<i64>) -> (tensor<1xi64>, tensor<1xi64>)
     reducer(%a0: tensor<i64>, %b0: tensor<i64>) (%a1: tensor<i64>, %b1: tensor<i64>)  {
      %s = stablehlo.add %a0, %b0 : tensor<i64>
      %t = stablehlo.add %a1, %b1 : tensor<i64>
      stablehlo.return %s, %t : tensor<i64>, tensor<i64>
    }
    %3:2 = stablehlo.while(%iterArg = %init, %iterArg_0 = %n) : tensor<i64>, tensor<i64>
     cond {
      %c = stablehlo.compare  LT, %iterArg, %iterArg_0,  SIGNED : (tensor<i64>, tensor<i64>) -> tensor<i1>
      stablehlo.return %c : tensor<i1>
    } do {
      %one = stablehlo.constant dense<1> : tensor<i64>
      %inc = stablehlo.add %iterArg, %one : tensor<i64>
      stablehlo.return %inc, %iterArg_0 : tensor<i64>, tensor<i64>
    }
    %4 = stablehlo.optimization_barrier %0 : tensor<1xi64>
    %5:2 = stablehlo.optimization_barrier %0, %1 : tensor<1xi64>, tensor<1xi64>
    return %4 : tensor<1xi64>
  }
  func.func @calls(%x: tensor<4xf32>, %t: !stablehlo.token) -> tensor<4xf32> {
    %0 = call @unary_helper(%x) : (tensor<4xf32>) -> tensor<4xf32>
    %1 = func.call @unary_helper(%0) : (tensor<4xf32>) -> tensor<4xf32>
    %2 = stablehlo.custom_call @foo(%1) {backend_config = "", has_side_effect = true, api_version = 2 : i32} : (tensor<4xf32>) -> tensor<4xf32>
    %3 = stablehlo.composite "my.op" %2 {composite_attributes = {alpha = 1.0 : f32}, decomposition = @unary_helper, version = 1 : i32} : (tensor<4xf32>) -> tensor<4xf32>
    %3b = stablehlo.composite "my.op2" %2 ({
    ^bb0(%r: tensor<4xf32>):
      stablehlo.return %r : tensor<4xf32>
    }) {decomposition = @unary_helper} : (tensor<4xf32>) -> tensor<4xf32>
    %4 = stablehlo.tuple %3, %x : tuple<tensor<4xf32>, tensor<4xf32>>
    %5 = stablehlo.get_tuple_element %4[1] : (tuple<tensor<4xf32>, tensor<4xf32>>) -> tensor<4xf32>
    %6 = stablehlo.after_all %t, %t : !stablehlo.token
    %7 = stablehlo.rng %x, %x, %x, distribution = UNIFORM : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %8:2 = stablehlo.rng_bit_generator %x, algorithm = DEFAULT : (tensor<4xf32>) -> (tensor<4xf32>, tensor<2x2xui32>)
    %9 = stablehlo.fft %x, type = FFT, length = [4] : (tensor<4xf32>) -> tensor<4xcomplex<f32>>
    %10 = stablehlo.cholesky %x, lower = true : tensor<4xf32>
    return %5 : tensor<4xf32>
  }
  func.func private @unary_helper(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
  func.func @chlo_forms(%x: tensor<16xf32>, %y: tensor<16xf32>, %p: tensor<16xi1>, %i: tensor<16xi32>) -> (tensor<2xf32>, tensor<2xi32>) {
    %0:2 = chlo.top_k(%x, k = 2) : tensor<16xf32> -> (tensor<2xf32>, tensor<2xi32>)
    %1:2 = chlo.top_k(%x, k = 2, is_stable = true) : tensor<16xf32> -> (tensor<2xf32>, tensor<2xi32>)
    %2 = chlo.erf %x : tensor<16xf32> -> tensor<16xf32>
    %3 = chlo.broadcast_add %x, %y : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    %4 = chlo.broadcast_add %x, %y {broadcast_dimensions = array<i64: 0>} : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    %5 = chlo.next_after %x, %y : tensor<16xf32>, tensor<16xf32> -> tensor<16xf32>
    %6 = chlo.broadcast_select %p, %x, %y : (tensor<16xi1>, tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    %7 = chlo.constant dense<1.0> : tensor<16xf32>
    %8 = chlo.mulhi %i, %i : tensor<16xi32>, tensor<16xi32> -> tensor<16xi32>
    %9 = chlo.lgamma %x : tensor<16xf32> -> tensor<16xf32>
    %10:2 = chlo.scan (%x) inits (%y) dimension=0 attributes {is_reverse = false} {
    ^bb0(%e: tensor<f32>, %acc: tensor<f32>):
      %s = stablehlo.add %e, %acc : tensor<f32>
      stablehlo.return %s, %s : tensor<f32>, tensor<f32>
    } : (tensor<16xf32>, tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
    return %0#0, %0#1 : tensor<2xf32>, tensor<2xi32>
  }
}
