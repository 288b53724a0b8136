{
  "targets": [
    {
      "target_name": "hsmkit",
      "sources": [
        "native/error.cc",
        "native/secure_memory.cc",
        "native/keys.cc",
        "native/aead.cc",
        "native/keywrap.cc",
        "native/pkey.cc",
        "native/health_tests.cc",
        "native/entropy.cc",
        "native/drbg.cc",
        "native/random.cc",
        "native/block_modes.cc",
        "native/mac.cc",
        "native/audit_chain.cc",
        "native/binding/module.cc",
        "native/binding/keys.cc",
        "native/binding/aead.cc",
        "native/binding/keywrap.cc",
        "native/binding/pkey.cc",
        "native/binding/random.cc",
        "native/binding/block_modes.cc",
        "native/binding/mac.cc",
        "native/binding/audit_chain.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "cflags_cc": ["-mrdrnd", "-mrdseed"]
        }]
      ]
    }
  ]
}
