// The issue's examples: pretty forms broken over lines as people write them by hand.
func.func @main(%lhs: tensor<2x2x2xf32>, %rhs: tensor<2x2x2xf32>,
                %img: tensor<1x4x4x1xf32>, %ker: tensor<3x3x1x1xf32>) -> (tensor<2x2x2xf32>, tensor<1x4x4x1xf32>) {
  %result = stablehlo.dot_general %lhs, %rhs,
      batching_dims = [0] x [0], contracting_dims = [2] x [1]
      : (tensor<2x2x2xf32>, tensor<2x2x2xf32>) -> tensor<2x2x2xf32>
  %conv = stablehlo.convolution(%img, %ker)
      dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f],
      window = {
        stride = [1, 1],      // unit stride
        pad = [[1, 1], [1, 1]],
        lhs_dilate = [1, 1],
        rhs_dilate = [1, 1]
      }
      {
        batch_group_count = 1 : i64,
        feature_group_count = 1 : i64
      }
      : (tensor<1x4x4x1xf32>, tensor<3x3x1x1xf32>)
      -> tensor<1x4x4x1xf32>
  %c = stablehlo.constant
      dense<[[1.0, 2.0],
             [3.0, 4.0]]>
      : tensor<2x2xf32>
  %b = stablehlo.broadcast_in_dim %c,
      dims = [1, 2]
      : (tensor<2x2xf32>) -> tensor<2x2x2xf32>
  %sum = stablehlo.add %result,
                       %b
      : tensor<2x2x2xf32>
  return %sum, %conv
      : tensor<2x2x2xf32>, tensor<1x4x4x1xf32>
}
