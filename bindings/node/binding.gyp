{
  "targets": [
    {
      "target_name": "astack",
      "sources": ["src/addon.c"],
      "include_dirs": ["../../include"],
      "cflags": ["-std=c99", "-Wall", "-Wextra", "-O2"],
      "libraries": [
        "<(module_root_dir)/../../target/release/libastack.a",
        "-lpthread",
        "-ldl",
        "-lm"
      ]
    }
  ]
}
