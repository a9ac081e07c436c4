/** The `--help` pages of `layerstore image …`, one per command, laid out like man pages. */

const COMMON = `GLOBAL OPTIONS
  --root DIR        store root (default $LAYERSTORE_ROOT, /var/lib/layerstore as root)
  --driver NAME     overlay2 or vfs (default: the one the root uses, else overlay2 where it works)
  --json            one JSON document on standard output
  --quiet           no warnings, no progress

EXIT STATUS
  0 success, 2 usage error, 3 invalid input (a corrupt archive, a bad reference),
  4 not found, 5 already exists, 6 conflict, 7 failed precondition, 8 data loss,
  9 unavailable (disk full, permission), 1 unexpected. Errors print
  "layerstore: CODE: message" on standard error (docs/errors.md lists the codes).
`

const PROGRESS = `  --progress MODE   auto (bars on a terminal, else none), tty, json (one JSON object per
                    event on standard error: layer-start, layer-progress, layer-done,
                    image-done; a layer may start before the one below is done), none
`

export const IMAGE_HELP: Readonly<Record<string, string>> = {
  '': `NAME
  layerstore image - load, save, list, inspect, tag and remove images

SYNOPSIS
  layerstore image load [-i FILE|DIR] [--platform OS/ARCH[/VARIANT]] [--progress MODE]
  layerstore image save REF... [-o FILE|DIR] [--format docker|oci] [--progress MODE]
  layerstore image ls
  layerstore image inspect REF
  layerstore image tag SOURCE TARGET
  layerstore image rm [-f] REF...

DESCRIPTION
  Images are kept as Docker keeps them: a configuration (its sha256 is the image ID) that
  lists the image's layers by DiffID, a hold on the top layer of that chain, and names
  (repository:tag) in repositories.json. A root is a Docker data root: dockerd started on it
  sees the same images.

  REF is a name (busybox, busybox:1.36, registry.example:5000/team/app:v2, name@sha256:...),
  an image ID (sha256:...) or a unique prefix of one. A name without a tag means :latest.

  Run "layerstore image COMMAND --help" for a command's page.

${COMMON}`,

  load: `NAME
  layerstore image load - load images from a docker-archive or an OCI image layout

SYNOPSIS
  layerstore image load [-i FILE|DIR] [--platform OS/ARCH[/VARIANT]] [--progress MODE]

DESCRIPTION
  Reads a docker-archive (what "docker save" writes: manifest.json, configurations, layer
  tars; Docker 1.10 to 24 and the Docker 25+ layout) or an OCI image layout (oci-layout,
  index.json, blobs/), as a directory or a tar file, plain or gzip-compressed. Without -i,
  the archive is read from standard input.

  Layers may be plain tars or gzip, zstd, xz or bzip2 compressed. Each layer is checked while
  it streams: the compressed blob against the digest its manifest announces, the tar against
  the configuration's rootfs.diff_ids. A layer already in the store is not read. Layers are
  recorded first, the image record and its names last: an interrupted load leaves no image
  without its layers, and the next command removes the layers it had registered.

  A name the archive gives an image that another image had moves to the loaded image.
  Prints "Loaded image: NAME" per name, or "Loaded image ID: ID" for an image without one.

OPTIONS
  -i, --input PATH  the archive: a tar file, a directory, or - for standard input
  --platform P      for an OCI index with images for several platforms, the one to load
                    (default the host's, e.g. linux/amd64)
${PROGRESS}  -h, --help        this page

EXAMPLES
  layerstore image load -i busybox.tar
  docker save busybox | layerstore image load
  layerstore image load -i ./oci-layout-dir --platform linux/arm64/v8

${COMMON}`,

  save: `NAME
  layerstore image save - write images to a docker-archive or an OCI image layout

SYNOPSIS
  layerstore image save REF... [-o FILE|DIR] [--format docker|oci] [--progress MODE]

DESCRIPTION
  Writes the images REF... with the names they were asked by (an image asked by ID gets
  none). Layers are the exact tars that were loaded, reassembled from tar-split metadata and
  checked against their DiffIDs while written; a layer shared by several images is written
  once. The output is deterministic: the same images give the same bytes.

  --format docker (the default) writes the layout of Docker 25's "docker save": an OCI image
  layout with manifest.json beside it, which "docker load" of any version, podman, skopeo and
  containerd read. --format oci writes an OCI image layout only, names in the
  org.opencontainers.image.ref.name and io.containerd.image.name annotations.

  A tar is written beside FILE and renamed into place when complete. With --format oci and a
  directory as -o (an existing one, or a path ending in /), the layout is written as files.
  Without -o, the tar goes to standard output (not a terminal).

OPTIONS
  -o, --output PATH   the archive file, the layout directory, or - for standard output
  --format F          docker (default) or oci
${PROGRESS}  -h, --help          this page

EXAMPLES
  layerstore image save busybox:latest -o busybox.tar
  layerstore image save app:1 app:2 --format oci -o ./layout/
  layerstore image save app:1 | gzip > app.tar.gz

${COMMON}`,

  ls: `NAME
  layerstore image ls - list images

SYNOPSIS
  layerstore image ls

DESCRIPTION
  One line per name: REPOSITORY, TAG, IMAGE ID (12 digits), CREATED, SIZE (the layers'
  unpacked size); an image without a name shows <none>. With --json, an array of
  {"id","repoTags","repoDigests","layers","diffIds","size","created","os","architecture"},
  "layers" being ChainIDs, bottom first.

OPTIONS
  -h, --help   this page

${COMMON}`,

  inspect: `NAME
  layerstore image inspect - show an image and its configuration

SYNOPSIS
  layerstore image inspect REF

DESCRIPTION
  Prints the image as "image ls --json" does, plus "config": its configuration.

OPTIONS
  -h, --help   this page

${COMMON}`,

  tag: `NAME
  layerstore image tag - give an image another name

SYNOPSIS
  layerstore image tag SOURCE TARGET

DESCRIPTION
  Points the name TARGET (repository[:tag], :latest by default) at the image SOURCE names. A
  name that pointed at another image moves. Digest references cannot be created.

OPTIONS
  -h, --help   this page

EXAMPLES
  layerstore image tag busybox:latest example/busybox:stable

${COMMON}`,

  rm: `NAME
  layerstore image rm - remove names and images

SYNOPSIS
  layerstore image rm [-f] REF...

DESCRIPTION
  As "docker rmi": a name is removed, and the image with it when no other name is left; an
  image ID removes the image and all its names. Layers that no other image, layer or
  read-write layer holds are deleted with the image. Prints "Untagged: NAME",
  "Deleted: ID" and "Deleted layer: CHAINID" lines.

  Refused with IMAGE_CONFLICT unless --force: removing by ID an image whose names are in
  several repositories, and removing an image that a read-write layer is made from (its
  layers then stay until the read-write layer is removed).

OPTIONS
  -f, --force   remove despite the conflicts above
  -h, --help    this page

${COMMON}`,
}
