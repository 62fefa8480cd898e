# containerd's runc shim driving capsa-runtime (test/containerd): ctr, the
# daemon and containerd-shim-runc-v2, the shim Docker uses.
APT_PACKAGES += containerd runc
