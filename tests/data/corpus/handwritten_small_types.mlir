// Sub-byte and small-float element types as dense literals, decimal and hex.
module @small_types {
  func.func @main() -> (tensor<4xi4>, tensor<4xui4>, tensor<2xi2>, tensor<2xui2>) {
    %0 = stablehlo.constant dense<[-8, -1, 0, 7]> : tensor<4xi4>
    %1 = stablehlo.constant dense<[0, 1, 14, 15]> : tensor<4xui4>
    %2 = stablehlo.constant dense<[-2, 1]> : tensor<2xi2>
    %3 = stablehlo.constant dense<[0, 3]> : tensor<2xui2>
    %4 = stablehlo.constant dense<"0x080F0007"> : tensor<4xi4>
    %5 = stablehlo.constant dense<[0x8, 0xF, 0x0, 0x7]> : tensor<4xi4>
    %6 = stablehlo.constant dense<[0.5, -6.0, 1.5, 0.0]> : tensor<4xf4E2M1FN>
    %7 = stablehlo.constant dense<"0x010F0200"> : tensor<4xf4E2M1FN>
    %8 = stablehlo.constant dense<[7.5, -0.125]> : tensor<2xf6E2M3FN>
    %9 = stablehlo.constant dense<[28.0, -0.0625]> : tensor<2xf6E3M2FN>
    %10 = stablehlo.constant dense<[1.0, 0.25, 128.0]> : tensor<3xf8E8M0FNU>
    %11 = stablehlo.constant dense<[448.0, -0.5]> : tensor<2xf8E4M3FN>
    %12 = stablehlo.constant dense<[57344.0, 0x7C]> : tensor<2xf8E5M2>
    %13 = stablehlo.constant dense<[1.0, -2.0]> : tensor<2xf8E4M3FNUZ>
    %14 = stablehlo.constant dense<[1.0, -2.0]> : tensor<2xf8E5M2FNUZ>
    %15 = stablehlo.constant dense<[1.0, -2.0]> : tensor<2xf8E4M3B11FNUZ>
    %16 = stablehlo.constant dense<[1.0, -2.0]> : tensor<2xf8E4M3>
    %17 = stablehlo.constant dense<[1.0, -2.0]> : tensor<2xf8E3M4>
    %18 = stablehlo.constant dense<3> : tensor<8xi4>
    %19 = stablehlo.constant dense<"0x0C"> : tensor<8xui4>
    %20 = stablehlo.constant dense<1.0> : tensor<268435456xf32>
    %21 = stablehlo.constant dense<0xFF> : tensor<2xi8>
    %22 = stablehlo.constant dense<255> : tensor<2xi8>
    return %0, %1, %2, %3 : tensor<4xi4>, tensor<4xui4>, tensor<2xi2>, tensor<2xui2>
  }
}
