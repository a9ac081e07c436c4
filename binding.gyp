{
  "targets": [
    {
      "target_name": "layerstore_sys",
      "sources": [
        "native/sys.c",
        "native/napi-util.c",
        "native/checksum-bindings.c",
        "native/crc64.c",
        "native/dir-size.c",
        "native/read-files.c",
        "native/create-files.c",
        "native/mount.c",
        "native/sha256-thread.c",
        "native/inflate-bindings.c",
        "native/inflate-thread.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
