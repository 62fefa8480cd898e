// Package layer applies OCI image layers to a directory safely.
//
// A layer is a tar stream, possibly gzip- or zstd-compressed (Decompress),
// that Unpack applies to an empty directory: the directory then holds the
// layer in overlayfs form, ready to be a lower dir of an overlay mount. OCI
// whiteouts (".wh.NAME", ".wh..wh..opq") become overlayfs whiteouts (a 0:0
// character device, the trusted.overlay.opaque xattr).
//
// Layers come from registries and are hostile until proven otherwise. Unpack
// opens the root once and creates every entry relative to a directory file
// descriptor reached from it without following any symlink (openat2 with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), with the final name created by
// O_EXCL/mkdirat/symlinkat/linkat/mknodat, which never follow a symlink either.
// Entry names holding "..", absolute names, writes through a symlink, hardlinks
// to targets outside the layer and whiteouts that do not name a plain entry are
// refused with an *EntryError naming the entry. Limits bound the uncompressed
// bytes and the inode count, so a decompression bomb stops early.
package layer
