#loc1 = loc("img")
#loc5 = loc("reduce_window_max")
#loc9 = loc("reduce_window_max:"(#loc5))
"builtin.module"() <{sym_name = "jit_pooling"}> ({
  "func.func"() <{function_type = (tensor<2x9x9x3xf32>) -> tensor<2x4x4x3xf32>, res_attrs = [{jax.result_info = "result"}], sym_name = "main", sym_visibility = "public"}> ({
  ^bb0(%arg0: tensor<2x9x9x3xf32> loc("img")):
    %0 = "stablehlo.constant"() <{value = dense<0xFF800000> : tensor<f32>}> : () -> tensor<f32> loc(#loc13)
    %1 = "stablehlo.broadcast_in_dim"(%0) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<f32> loc(#loc13)
    %2 = "stablehlo.reduce_window"(%arg0, %1) <{window_dimensions = array<i64: 1, 3, 3, 1>, window_strides = array<i64: 1, 2, 2, 1>}> ({
    ^bb0(%arg1: tensor<f32> loc("reduce_window_max:"(#loc5)), %arg2: tensor<f32> loc("reduce_window_max:"(#loc5))):
      %3 = "stablehlo.maximum"(%arg1, %arg2) : (tensor<f32>, tensor<f32>) -> tensor<f32> loc(#loc13)
      "stablehlo.return"(%3) : (tensor<f32>) -> () loc(#loc13)
    }) : (tensor<2x9x9x3xf32>, tensor<f32>) -> tensor<2x4x4x3xf32> loc(#loc13)
    "func.return"(%2) : (tensor<2x4x4x3xf32>) -> () loc(#loc12)
  }) : () -> () loc(#loc)
}) {jax.uses_shape_polymorphism = false, mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} : () -> () loc(#loc)
#loc = loc(unknown)
#loc2 = loc("/work/wt/parser/tools/export_corpus.py":80:15 to :93)
#loc3 = loc("/work/wt/parser/tools/export_corpus.py":105:15 to :52)
#loc4 = loc("/work/wt/parser/tools/export_corpus.py":112:4 to :10)
#loc6 = loc("programs.<locals>.pooling"(#loc2))
#loc7 = loc("main"(#loc3))
#loc8 = loc("<module>"(#loc4))
#loc10 = loc(callsite(#loc7 at #loc8))
#loc11 = loc(callsite(#loc6 at #loc10))
#loc12 = loc("jit(pooling)"(#loc10))
#loc13 = loc("jit(pooling)/reduce_window_max"(#loc11))
