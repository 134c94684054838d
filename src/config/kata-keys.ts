/**
 * Keys and sections of Kata Containers' configuration.toml (1.x and 2.x, QEMU flavour) that
 * kata-runtime accepts without using, so that a Kata configuration file loads with warnings
 * rather than errors. Names only; what they mean in Kata is Kata's documentation.
 */

/** Keys of the sections kata-runtime reads, that it does not act on. */
export const KATA_UNUSED_KEYS: Readonly<Record<string, readonly string[]>> = {
  'hypervisor.qemu': [
    'block_device_aio', 'block_device_cache_direct', 'block_device_cache_noflush', 'block_device_cache_set',
    'block_device_driver', 'cold_plug_vfio', 'confidential_guest', 'cpu_features', 'ctlpath', 'default_bridges',
    'disable_block_device_use', 'disable_guest_selinux', 'disable_image_nvdimm', 'disable_nesting_checks',
    'disable_seccomp', 'disable_selinux', 'disable_vhost_net', 'disk_rate_limiter_bw_max_rate',
    'disk_rate_limiter_bw_one_time_burst', 'disk_rate_limiter_ops_max_rate', 'disk_rate_limiter_ops_one_time_burst',
    'enable_debug', 'enable_guest_swap', 'enable_hugepages', 'enable_iommu', 'enable_iommu_platform',
    'enable_iothreads', 'enable_mem_prealloc', 'enable_swap', 'enable_template', 'enable_vhost_user_store',
    'enable_virtio_mem', 'entropy_source', 'file_mem_backend', 'firmware', 'firmware_volume', 'guest_hook_path',
    'guest_memory_dump_paging', 'guest_memory_dump_path', 'hot_plug_vfio', 'hotplug_vfio_on_root_bus', 'image',
    'jailer_path', 'machine_accelerators', 'memory_offset', 'memory_slots', 'msize_9p',
    'net_rate_limiter_bw_max_rate', 'net_rate_limiter_bw_one_time_burst', 'net_rate_limiter_ops_max_rate',
    'net_rate_limiter_ops_one_time_burst', 'pcie_root_port', 'pflashes', 'rootfs_type', 'rootless',
    'rx_rate_limiter_max_rate', 'seccompsandbox', 'sev_snp_guest', 'tx_rate_limiter_max_rate', 'use_legacy_serial',
    'use_vsock', 'valid_ctlpaths', 'valid_entropy_sources', 'valid_file_mem_backends', 'valid_hypervisor_paths',
    'valid_jailer_paths', 'valid_vhost_user_store_paths', 'valid_virtio_fs_daemon_paths', 'vhost_user_reconnect_timeout_sec',
    'vhost_user_store_path', 'virtio_fs_cache', 'virtio_fs_cache_size', 'virtio_fs_extra_args', 'virtio_fs_queue_size',
  ],
  'agent.kata': ['container_pipe_size', 'debug_console_enabled', 'enable_tracing', 'kernel_modules', 'trace_mode', 'trace_type'],
  runtime: [
    'create_container_timeout', 'disable_guest_empty_dir', 'disable_guest_seccomp', 'disable_new_netns', 'enable_cpu_quota',
    'enable_pprof', 'enable_tracing', 'enable_vcpus_pinning', 'experimental', 'jaeger_endpoint', 'jaeger_password',
    'jaeger_user', 'sandbox_bind_mounts', 'sandbox_cgroup_only', 'static_sandbox_resource_mgmt', 'vfio_mode',
  ],
};

/** Whole sections kata-runtime ignores: other hypervisors, the VM factory, 1.x's proxy and shim... */
export const KATA_UNUSED_SECTIONS: readonly string[] = [
  'hypervisor.acrn', 'hypervisor.clh', 'hypervisor.dragonball', 'hypervisor.firecracker', 'hypervisor.remote',
  'hypervisor.stratovirt', 'factory', 'image', 'netmon', 'proxy', 'shim',
];
