/* Unit tests: lib/gpu (plan for a fake driver tree built by
 * tests/fixtures/fake-nvidia.sh, selection, the classic failures, CUDA
 * requirements, CDI JSON/YAML), lib/ldcache (a cache ldconfig wrote, hostile
 * caches, ELF SONAME) and the 8-GPU planning time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdi.h"
#include "error.h"
#include "gpu.h"
#include "ldcache.h"
#include "util.h"

#define VER "550.54.15"
#define LIBDIR "/usr/lib/x86_64-linux-gnu"

static char base[256];
static char tree[300], tree_h100[300], tree_nouvm[300], tree_cdi[300], tree_yaml[300], tree8[300],
    empty[300];
static int have_nodes; /* the fixture could mknod (root) */

static int fixture(const char *dir, const char *args)
{
	const char *top = getenv("TOP");
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "'%s/tests/fixtures/fake-nvidia.sh' '%s' %s >/dev/null 2>&1",
		 top && *top ? top : ".", dir, args);
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int group_setup(void **state)
{
	const char *t = getenv("TEST_TMPDIR");

	snprintf(base, sizeof(base), "%s/ep-gpu-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(base))
		return -1;
	snprintf(tree, sizeof(tree), "%s/a", base);
	snprintf(tree_nouvm, sizeof(tree_nouvm), "%s/nouvm", base);
	snprintf(tree_h100, sizeof(tree_h100), "%s/h100", base);
	snprintf(tree_cdi, sizeof(tree_cdi), "%s/cdi", base);
	snprintf(tree_yaml, sizeof(tree_yaml), "%s/yaml", base);
	snprintf(tree8, sizeof(tree8), "%s/g8", base);
	snprintf(empty, sizeof(empty), "%s/empty", base);
	if (mkdir(empty, 0755) < 0)
		return -1;
	int rc = fixture(tree, "--gpus 2");

	if (rc != 0 && rc != 77) {
		fprintf(stderr, "fake-nvidia.sh failed (%d)\n", rc);
		return -1;
	}
	have_nodes = rc == 0;
	if (have_nodes &&
	    (fixture(tree_nouvm, "--no-uvm") != 0 || fixture(tree_cdi, "--cdi") != 0 ||
	     fixture(tree_yaml, "--cdi-yaml") != 0 || fixture(tree8, "--gpus 8") != 0 ||
	     fixture(tree_h100, "--gpus 1 --driver 580.159.04") != 0))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	ep_rm_rf(base, NULL);
	return 0;
}

#define NEED_NODES()                                                                               \
	do {                                                                                       \
		if (!have_nodes)                                                                   \
			skip(); /* mknod needs root */                                             \
	} while (0)

static const struct ep_gpu_device *dev(const struct ep_gpu_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n_devices; i++)
		if (strcmp(p->devices[i].path, path) == 0)
			return &p->devices[i];
	return NULL;
}

static const struct ep_gpu_mount *mnt(const struct ep_gpu_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n_mounts; i++)
		if (strcmp(p->mounts[i].path, path) == 0)
			return &p->mounts[i];
	return NULL;
}

static const char *link_target(const struct ep_gpu_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n_links; i++)
		if (strcmp(p->links[i].path, path) == 0)
			return p->links[i].target;
	return NULL;
}

static const char *env(const struct ep_gpu_plan *p, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < p->n_env; i++)
		if (strncmp(p->env[i], key, kl) == 0 && p->env[i][kl] == '=')
			return p->env[i] + kl + 1;
	return NULL;
}

static void assert_dev(const struct ep_gpu_plan *p, const char *root, const char *path,
		       unsigned maj, unsigned min)
{
	const struct ep_gpu_device *d = dev(p, path);
	char host[512];

	if (!d)
		fail_msg("no device %s", path);
	assert_int_equal(d->type, 'c');
	assert_int_equal(d->major, maj);
	assert_int_equal(d->minor, min);
	snprintf(host, sizeof(host), "%s%s", root, path);
	assert_string_equal(d->host_path, host);
	assert_int_equal(d->file_mode, 0666);
	assert_non_null(strchr(d->access, 'r'));
	assert_non_null(strchr(d->access, 'w'));
}

static void test_plan_fake_tree(void **state)
{
	NEED_NODES();
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	char host[1024];

	assert_int_equal(ep_gpu_plan(tree, "all", NULL, &p, &err), 0);
	assert_string_equal(p.driver_version, VER);
	assert_int_equal(p.cuda_driver_major, 12);
	assert_int_equal(p.cuda_driver_minor, 4);
	assert_int_equal(p.from_cdi, 0);
	assert_int_equal(p.n_gpus, 2);
	assert_string_equal(p.gpus[1].uuid, "GPU-00000000-0000-0000-0000-000000000001");
	assert_string_equal(p.gpus[1].bus_id, "0000:02:00.0");
	assert_string_equal(p.gpus[1].name, "NVIDIA A100-SXM4-40GB");
	assert_int_equal(p.gpus[1].minor, 1);

	/* Devices with the NVIDIA majors; uvm's from proc/devices. */
	assert_dev(&p, tree, "/dev/nvidiactl", 195, 255);
	assert_dev(&p, tree, "/dev/nvidia-uvm", 510, 0);
	assert_dev(&p, tree, "/dev/nvidia-uvm-tools", 510, 1);
	assert_dev(&p, tree, "/dev/nvidia0", 195, 0);
	assert_dev(&p, tree, "/dev/nvidia1", 195, 1);
	assert_null(dev(&p, "/dev/nvidia2"));

	/* Every driver library, read-only, with its SONAME link. */
	static const char *const libs[] = {
	    "libcuda",		"libnvidia-ml",	     "libnvidia-ptxjitcompiler", "libcudadebugger",
	    "libnvidia-nvvm",	"libnvidia-gpucomp", "libnvidia-allocator",	 "libnvidia-cfg",
	    "libnvidia-opencl",
	};
	size_t nlib = 0;

	for (size_t i = 0; i < EP_ARRAY_SIZE(libs); i++) {
		char path[256];

		snprintf(path, sizeof(path), LIBDIR "/%s.so." VER, libs[i]);
		const struct ep_gpu_mount *m = mnt(&p, path);

		if (!m)
			fail_msg("no mount %s", path);
		snprintf(host, sizeof(host), "%s%s", tree, path);
		assert_string_equal(m->host_path, host);
		assert_true(m->read_only);
		assert_int_equal(m->kind, EP_GPU_MOUNT_LIB);
		assert_non_null(strstr(m->options, "nosuid"));
		assert_string_equal(m->type, "bind");
	}
	for (size_t i = 0; i < p.n_mounts; i++)
		nlib += p.mounts[i].kind == EP_GPU_MOUNT_LIB;
	assert_int_equal(nlib, EP_ARRAY_SIZE(libs)); /* not gtk3, not libfoo */
	assert_null(mnt(&p, LIBDIR "/libnvidia-gtk3.so." VER));
	assert_string_equal(link_target(&p, LIBDIR "/libcuda.so.1"), "libcuda.so." VER);
	assert_string_equal(link_target(&p, LIBDIR "/libcuda.so"), "libcuda.so.1");
	assert_string_equal(link_target(&p, LIBDIR "/libnvidia-ml.so.1"), "libnvidia-ml.so." VER);
	assert_string_equal(link_target(&p, LIBDIR "/libnvidia-nvvm.so.4"),
			    "libnvidia-nvvm.so." VER);
	/* Its SONAME is the file name: no link. */
	assert_null(link_target(&p, LIBDIR "/libnvidia-gpucomp.so.1"));

	/* Binaries, firmware, the patched params, env, shm. */
	const struct ep_gpu_mount *smi = mnt(&p, "/usr/bin/nvidia-smi");

	assert_non_null(smi);
	assert_true(smi->read_only);
	assert_int_equal(smi->kind, EP_GPU_MOUNT_BIN);
	assert_non_null(mnt(&p, "/usr/bin/nvidia-cuda-mps-control"));
	assert_non_null(mnt(&p, "/lib/firmware/nvidia/" VER "/gsp_ga10x.bin"));
	assert_non_null(mnt(&p, "/lib/firmware/nvidia/" VER "/gsp_tu10x.bin"));
	assert_int_equal(p.n_files, 1);
	assert_string_equal(p.files[0].path, "/proc/driver/nvidia/params");
	assert_true(p.files[0].in_proc);
	assert_non_null(strstr(p.files[0].content, "ModifyDeviceFiles: 0"));
	assert_null(strstr(p.files[0].content, "ModifyDeviceFiles: 1"));
	assert_string_equal(env(&p, "NVIDIA_VISIBLE_DEVICES"), "all");
	assert_string_equal(env(&p, "NVIDIA_DRIVER_CAPABILITIES"), "compute,utility");
	assert_int_equal(p.shm_size, 1ull << 30); /* the fake host has 62 GiB */
	assert_string_equal(p.lib_dir, LIBDIR);

	json_t *j = ep_gpu_plan_to_json(&p);

	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "devices")), p.n_devices);
	json_decref(j);
	ep_gpu_plan_release(&p);
}

static void test_none_is_empty(void **state)
{
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	static const char *const nones[] = {"none", "", "void"};

	/* Even without a driver: "none" asks for nothing. */
	for (size_t i = 0; i < EP_ARRAY_SIZE(nones); i++) {
		assert_int_equal(ep_gpu_plan(empty, nones[i], NULL, &p, &err), 0);
		assert_int_equal(p.n_devices + p.n_mounts + p.n_links + p.n_env + p.n_files, 0);
		assert_int_equal(p.n_gpus, 0);
		assert_int_equal(p.shm_size, 0);
		ep_gpu_plan_release(&p);
	}
	assert_int_equal(ep_gpu_plan(empty, NULL, NULL, &p, &err), 0);
	assert_int_equal(p.n_devices, 0);
	ep_gpu_plan_release(&p);
}

static void test_select(void **state)
{
	NEED_NODES();
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_gpu_plan(tree, "1", NULL, &p, &err), 0);
	assert_int_equal(p.n_gpus, 1);
	assert_non_null(dev(&p, "/dev/nvidia1"));
	assert_null(dev(&p, "/dev/nvidia0"));
	assert_non_null(dev(&p, "/dev/nvidiactl"));
	assert_string_equal(env(&p, "NVIDIA_VISIBLE_DEVICES"), "1");
	ep_gpu_plan_release(&p);

	assert_int_equal(
	    ep_gpu_plan(tree, "gpu-00000000-0000-0000-0000-000000000000", NULL, &p, &err), 0);
	assert_int_equal(p.n_gpus, 1);
	assert_non_null(dev(&p, "/dev/nvidia0"));
	assert_null(dev(&p, "/dev/nvidia1"));
	assert_string_equal(p.visible_devices, "0");
	ep_gpu_plan_release(&p);

	assert_int_equal(ep_gpu_plan(tree, "1,0000:01:00.0,1", NULL, &p, &err), 0);
	assert_int_equal(p.n_gpus, 2);
	assert_string_equal(p.visible_devices, "1,0");
	ep_gpu_plan_release(&p);
}

static void test_bad_selection(void **state)
{
	NEED_NODES();
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_gpu_plan(tree, "0,5", NULL, &p, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "GPU index 5 does not exist"));
	assert_non_null(strstr(err.msg, "2 GPUs"));
	assert_int_equal(p.n_devices, 0); /* released */

	ep_error_clear(&err);
	assert_int_equal(ep_gpu_plan(tree, "GPU-deadbeef", NULL, &p, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "'GPU-deadbeef': unknown device"));

	ep_error_clear(&err);
	assert_int_equal(ep_gpu_plan(tree, "0,,1", NULL, &p, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
}

static void test_no_driver(void **state)
{
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_gpu_plan(empty, "all", NULL, &p, &err), -1);
	assert_int_equal(err.code, EP_EENV);
	assert_non_null(strstr(err.msg, "no NVIDIA driver found"));
	assert_non_null(strstr(err.msg, "/proc/driver/nvidia/version' is missing"));
}

static void test_missing_uvm(void **state)
{
	NEED_NODES();
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	char a[512], b[512];

	/* Module not loaded: proc/devices has no nvidia-uvm. */
	assert_int_equal(ep_gpu_plan(tree_nouvm, "all", NULL, &p, &err), -1);
	assert_int_equal(err.code, EP_EENV);
	assert_non_null(strstr(err.msg, "nvidia-uvm"));
	assert_non_null(strstr(err.msg, "nvidia-modprobe -u -c=0"));

	/* Module loaded, node not created. */
	snprintf(a, sizeof(a), "%s/dev/nvidia-uvm", tree);
	snprintf(b, sizeof(b), "%s/dev/nvidia-uvm.away", tree);
	assert_int_equal(rename(a, b), 0);
	ep_error_clear(&err);
	int rc = ep_gpu_plan(tree, "all", NULL, &p, &err);

	assert_int_equal(rename(b, a), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, EP_EENV);
	assert_non_null(strstr(err.msg, "missing device node"));
	assert_non_null(strstr(err.msg, "/dev/nvidia-uvm'"));
}

static void test_cuda_table(void **state)
{
	int a, b;

	assert_int_equal(ep_gpu_driver_cuda("525.60.13", &a, &b), 1);
	assert_int_equal(a * 10 + b, 120);
	assert_int_equal(ep_gpu_driver_cuda("525.60.12", &a, &b), 1);
	assert_int_equal(a * 10 + b, 118);
	assert_int_equal(ep_gpu_driver_cuda("550.54.14", &a, &b), 1);
	assert_int_equal(a * 10 + b, 124);
	assert_int_equal(ep_gpu_driver_cuda("570.26", &a, &b), 1);
	assert_int_equal(a * 10 + b, 128);
	assert_int_equal(ep_gpu_driver_cuda("580.65.06", &a, &b), 1);
	assert_int_equal(a * 10 + b, 130);
	assert_int_equal(ep_gpu_driver_cuda("590.44.01", &a, &b), 0); /* newer than the table */
	assert_int_equal(a * 10 + b, 130);
	assert_int_equal(ep_gpu_driver_cuda("x.y", &a, &b), -1);

	struct ep_error err = EP_ERROR_INIT;

	assert_int_equal(ep_gpu_require_eval("cuda>=12.4", VER, 12, 4, "nvidia", &err), 1);
	assert_int_equal(ep_gpu_require_eval("cuda>=12.5", VER, 12, 4, "nvidia", &err), 0);
	/* OR of terms, AND of factors (NVIDIA's image strings). */
	assert_int_equal(ep_gpu_require_eval("cuda>=12.8 brand=tesla,driver>=550,driver<551", VER,
					     12, 4, "tesla", &err),
			 1);
	assert_int_equal(ep_gpu_require_eval("cuda>=12.8 brand=tesla,driver>=550,driver<551", VER,
					     12, 4, "geforce", &err),
			 0);
	assert_int_equal(ep_gpu_require_eval("cuda>=12.8 brand=tesla,driver>=470,driver<471", VER,
					     12, 4, "tesla", &err),
			 0);
	assert_int_equal(ep_gpu_require_eval("cuda~12", VER, 12, 4, "tesla", &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	ep_error_clear(&err);
	assert_int_equal(ep_gpu_require_eval("gpu>=1", VER, 12, 4, "tesla", &err), -1);
}

static void test_driver_too_old(void **state)
{
	NEED_NODES();
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	char *needs128[] = {"PATH=/bin", "NVIDIA_REQUIRE_CUDA=cuda>=12.8", NULL};
	char *needs124[] = {"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471",
			    NULL};
	char *legacy[] = {"CUDA_VERSION=12.9.1", NULL};
	char *disabled[] = {"NVIDIA_REQUIRE_CUDA=cuda>=12.8", "NVIDIA_DISABLE_REQUIRE=true", NULL};
	char *branch[] = {"NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=nvidia,driver>=550,driver<551",
			  NULL};

	assert_int_equal(ep_gpu_plan(tree, "all", needs128, &p, &err), -1);
	assert_int_equal(err.code, EP_EENV);
	assert_non_null(strstr(err.msg, "the driver " VER " supports CUDA 12.4"));
	assert_non_null(strstr(err.msg, "the image needs 'cuda>=12.8'"));
	assert_non_null(strstr(err.msg, "570.26"));

	ep_error_clear(&err);
	assert_int_equal(ep_gpu_plan(tree, "all", legacy, &p, &err), -1);
	assert_non_null(strstr(err.msg, "cuda>=12.9"));

	assert_int_equal(ep_gpu_plan(tree, "all", needs124, &p, &err), 0);
	ep_gpu_plan_release(&p);
	assert_int_equal(ep_gpu_plan(tree, "all", disabled, &p, &err), 0);
	ep_gpu_plan_release(&p);
	/* The A100's brand is "nvidia": the forward-compat term holds. */
	assert_int_equal(ep_gpu_plan(tree, "0", branch, &p, &err), 0);
	ep_gpu_plan_release(&p);
}

static void check_cdi_plan(const char *root, const char *spec_rel)
{
	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	char want[512];

	assert_int_equal(ep_gpu_plan(root, "all", NULL, &p, &err), 0);
	assert_int_equal(p.from_cdi, 1);
	snprintf(want, sizeof(want), "%s%s", root, spec_rel);
	assert_string_equal(p.cdi_spec, want);
	assert_int_equal(p.n_cdi_devices, 1);
	assert_string_equal(p.cdi_devices[0], "nvidia.com/gpu=all");
	/* Nodes without type/major/minor in the spec are stat'ed on the host. */
	assert_dev(&p, root, "/dev/nvidia0", 195, 0);
	assert_dev(&p, root, "/dev/nvidia1", 195, 1);
	assert_dev(&p, root, "/dev/nvidiactl", 195, 255);
	assert_dev(&p, root, "/dev/nvidia-uvm", 510, 0);
	assert_int_equal(p.n_devices, 5);
	assert_int_equal(p.n_mounts, 4);
	const struct ep_gpu_mount *m = mnt(&p, LIBDIR "/libcuda.so." VER);

	assert_non_null(m);
	snprintf(want, sizeof(want), "%s" LIBDIR "/libcuda.so." VER, root);
	assert_string_equal(m->host_path, want);
	assert_true(m->read_only);
	assert_string_equal(m->options, "ro,nosuid,nodev,rbind,rprivate");
	assert_int_equal(m->kind, EP_GPU_MOUNT_LIB);
	assert_int_equal(mnt(&p, "/usr/bin/nvidia-smi")->kind, EP_GPU_MOUNT_BIN);
	assert_string_equal(link_target(&p, LIBDIR "/libcuda.so.1"), "libcuda.so." VER);
	assert_string_equal(env(&p, "NVIDIA_VISIBLE_DEVICES"), "void");
	assert_string_equal(env(&p, "NVIDIA_CTK_LIBCUDA_DIR"), LIBDIR);
	assert_string_equal(env(&p, "NVIDIA_DRIVER_CAPABILITIES"), "compute,utility");
	assert_int_equal(p.n_hooks, 1);
	assert_string_equal(p.hooks[0].hook_name, "createContainer");
	assert_int_equal(p.hooks[0].n_args, 4);
	assert_string_equal(p.hooks[0].args[1], "create-symlinks");
	ep_gpu_plan_release(&p);

	/* One GPU by index: its CDI device name. */
	assert_int_equal(ep_gpu_plan(root, "1", NULL, &p, &err), 0);
	assert_string_equal(p.cdi_devices[0], "nvidia.com/gpu=1");
	assert_non_null(dev(&p, "/dev/nvidia1"));
	assert_null(dev(&p, "/dev/nvidia0"));
	ep_gpu_plan_release(&p);

	/* no_cdi: full discovery. */
	struct ep_gpu_opts o = {.host_root = root, .gpus = "all", .no_cdi = 1};

	assert_int_equal(ep_gpu_plan_opts(&o, &p, &err), 0);
	assert_int_equal(p.from_cdi, 0);
	assert_non_null(mnt(&p, LIBDIR "/libnvidia-nvvm.so." VER));
	ep_gpu_plan_release(&p);
}

static void test_cdi_json(void **state)
{
	NEED_NODES();
	check_cdi_plan(tree_cdi, "/etc/cdi/nvidia.json");
}

static void test_cdi_yaml(void **state)
{
	NEED_NODES();
	check_cdi_plan(tree_yaml, "/var/run/cdi/nvidia.yaml");
}

static void test_cdi_hostile(void **state)
{
	struct ep_error err = EP_ERROR_INIT;
	char path[512];
	static const struct {
		const char *name, *text, *msg;
	} cases[] = {
	    {"a.yaml", "a: &x [1]\nb: *x\n", "aliases"},
	    {"b.yaml", "kind: [unclosed\n", "b.yaml':"},
	    {"c.json", "{\"kind\": ", "c.json':"},
	};

	for (size_t i = 0; i < EP_ARRAY_SIZE(cases); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, cases[i].name);
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(cases[i].text, f);
		fclose(f);
		ep_error_clear(&err);
		assert_null(ep_cdi_load(path, &err));
		assert_int_equal(err.code, EP_EINVAL);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("%s: %s", cases[i].name, err.msg);
	}
	/* A containerPath that climbs is refused. */
	json_t *spec = json_pack("{s:s,s:s,s:[],s:{s:[{s:s,s:s}]}}", "cdiVersion", "0.5.0", "kind",
				 "nvidia.com/gpu", "devices", "containerEdits", "mounts",
				 "hostPath", "/x", "containerPath", "/usr/../../etc/passwd");
	struct ep_gpu_plan p = {0};

	ep_error_clear(&err);
	assert_int_equal(ep_cdi_apply(spec, "s.json", "/", NULL, 0, &p, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);
	json_decref(spec);
	ep_gpu_plan_release(&p);
}

/* Texts captured on a real H100 host (driver 580.159.04, open kernel
 * module, driver injected under /usr/local/nvidia by its platform). */
static void test_h100_replica(void **state)
{
	NEED_NODES();
	static const char version[] =
	    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release "
	    "Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC) \n";
	static const char info[] = "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 41\n"
				   "GPU UUID: \t GPU-fde9c672-ba5c-7fc3-60e6-be383752a594\n"
				   "Video BIOS: \t 96.00.da.00.0c\nBus Type: \t PCIe\n"
				   "DMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n"
				   "Bus Location: \t 0000:00:06.0\nDevice Minor: \t 0\n"
				   "GPU Firmware: \t 580.159.04\nGPU Excluded:\t No\n";
	char path[512], to[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/driver/nvidia/version", tree_h100);
	assert_non_null(f = fopen(path, "w"));
	fputs(version, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/proc/driver/nvidia/gpus/0000:01:00.0/information",
		 tree_h100);
	assert_non_null(f = fopen(path, "w"));
	fputs(info, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/usr/local/nvidia/bin", tree_h100);
	assert_int_equal(ep_mkdir_p(path, NULL), 0);
	snprintf(path, sizeof(path), "%s/usr/bin/nvidia-smi", tree_h100);
	snprintf(to, sizeof(to), "%s/usr/local/nvidia/bin/nvidia-smi", tree_h100);
	assert_int_equal(rename(path, to), 0);

	struct ep_gpu_plan p;
	struct ep_error err = EP_ERROR_INIT;
	char *needs13[] = {"NVIDIA_REQUIRE_CUDA=cuda>=13.0", NULL};

	assert_int_equal(
	    ep_gpu_plan(tree_h100, "GPU-fde9c672-ba5c-7fc3-60e6-be383752a594", needs13, &p, &err),
	    0);
	assert_string_equal(p.driver_version, "580.159.04");
	assert_int_equal(p.cuda_driver_major, 13);
	assert_int_equal(p.cuda_driver_minor, 0);
	assert_string_equal(p.gpus[0].name, "NVIDIA H100 80GB HBM3");
	assert_string_equal(p.gpus[0].bus_id, "0000:00:06.0");
	assert_non_null(mnt(&p, LIBDIR "/libcuda.so.580.159.04"));
	assert_string_equal(mnt(&p, "/usr/bin/nvidia-smi")->host_path, to);
	ep_gpu_plan_release(&p);

	/* The host's real ld.so.cache: as many entries as `ldconfig -p` printed
	 * there ("520 libs found"), libcuda.so.1 twice (two dirs). */
	struct ep_ldcache c;
	const char *top = getenv("TOP");
	int ncuda = 0;

	snprintf(path, sizeof(path), "%s/tests/data/gpu/h100-ldcache.bin", top && *top ? top : ".");
	assert_int_equal(ep_ldcache_load(path, &c, &err), 0);
	assert_int_equal(c.n, 520);
	for (size_t i = 0; i < c.n; i++)
		if (strcmp(c.entries[i].key, "libcuda.so.1") == 0) {
			ncuda++;
			assert_int_equal(c.entries[i].flags,
					 EP_LD_FLAG_ELF_LIBC6 | EP_LD_FLAG_X8664_LIB64);
		}
	assert_int_equal(ncuda, 2);
	ep_ldcache_release(&c);
}

static void test_ldcache_real(void **state)
{
	NEED_NODES();
	struct ep_ldcache c;
	struct ep_error err = EP_ERROR_INIT;
	char path[512];
	int found = 0;

	snprintf(path, sizeof(path), "%s/etc/ld.so.cache", tree);
	assert_int_equal(ep_ldcache_load(path, &c, &err), 0);
	assert_int_equal(c.n, 11); /* 10 fake driver libs + libfoo */
	for (size_t i = 0; i < c.n; i++) {
		if (strcmp(c.entries[i].key, "libcuda.so.1") == 0) {
			found = 1;
			assert_string_equal(c.entries[i].value, LIBDIR "/libcuda.so.1");
			assert_int_equal(c.entries[i].flags & EP_LD_FLAG_ARCH_MASK,
					 ep_ldcache_native_arch());
			assert_int_equal(c.entries[i].flags & EP_LD_FLAG_TYPE_MASK,
					 EP_LD_FLAG_ELF_LIBC6);
		}
	}
	assert_true(found);
	ep_ldcache_release(&c);
}

static char *cache_copy(size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/etc/ld.so.cache", tree);
	return ep_read_file(path, 1 << 20, len, NULL);
}

static void expect_refused(char *buf, size_t len, const char *what)
{
	struct ep_ldcache c;
	struct ep_error err = EP_ERROR_INIT;

	if (ep_ldcache_parse(buf, len, &c, &err) == 0)
		fail_msg("hostile cache accepted: %s", what);
	assert_int_equal(err.code, EP_EINVAL);
	assert_non_null(strstr(err.msg, "ld.so.cache"));
}

static void test_ldcache_hostile(void **state)
{
	NEED_NODES();
	size_t len;
	char *b;

	/* Truncations at every length short of the string table's end. */
	for (size_t cut = 0; cut < 48 + 11 * 24; cut += 7) {
		b = cache_copy(&len);
		assert_non_null(b);
		expect_refused(b, cut, "truncated");
	}
	b = cache_copy(&len);
	uint32_t big = 0x10000000;

	memcpy(b + 20, &big, 4); /* nlibs */
	expect_refused(b, len, "nlibs");

	b = cache_copy(&len);
	uint32_t off = (uint32_t)len + 100;

	memcpy(b + 48 + 4, &off, 4); /* entry 0 key */
	expect_refused(b, len, "key offset");

	b = cache_copy(&len);
	off = 0xffffffffu;
	memcpy(b + 48 + 24 + 8, &off, 4); /* entry 1 value */
	expect_refused(b, len, "value offset");

	/* A string that runs to the end of the file without a NUL. */
	b = cache_copy(&len);
	b[len - 1] = 'x';
	off = (uint32_t)len - 1;
	memcpy(b + 48 + 4, &off, 4);
	expect_refused(b, len, "unterminated");

	b = cache_copy(&len);
	memcpy(b, "glibc-ld.so.cache1.0", 20);
	expect_refused(b, len, "version");

	/* libc5 header claiming more entries than the file holds. */
	b = malloc(64);
	memset(b, 0, 64);
	memcpy(b, "ld.so-1.7.0", 11);
	big = 1000;
	memcpy(b + 12, &big, 4);
	expect_refused(b, 64, "old nlibs");
}

static void test_elf_soname(void **state)
{
	NEED_NODES();
	struct ep_error err = EP_ERROR_INIT;
	char path[512], *so = NULL;

	snprintf(path, sizeof(path), "%s" LIBDIR "/libcuda.so." VER, tree);
	assert_int_equal(ep_elf_soname(path, &so, &err), 1);
	assert_string_equal(so, "libcuda.so.1");
	free(so);
	snprintf(path, sizeof(path), "%s" LIBDIR "/libnvidia-gpucomp.so." VER, tree);
	assert_int_equal(ep_elf_soname(path, &so, &err), 1);
	assert_string_equal(so, "libnvidia-gpucomp.so." VER);
	free(so);

	/* A shell script is not ELF. */
	snprintf(path, sizeof(path), "%s/usr/bin/nvidia-smi", tree);
	assert_int_equal(ep_elf_soname(path, &so, &err), -1);
	assert_int_equal(err.code, EP_EINVAL);

	/* Truncated copies of a real .so: refused or no SONAME, never a crash. */
	size_t len;

	snprintf(path, sizeof(path), "%s" LIBDIR "/libcuda.so." VER, tree);
	char *img = ep_read_file(path, 1 << 20, &len, NULL);
	char cut[512];

	assert_non_null(img);
	snprintf(cut, sizeof(cut), "%s/cut.so", base);
	for (size_t n = 0; n < len; n += len / 13 + 1) {
		FILE *f = fopen(cut, "w");

		assert_non_null(f);
		fwrite(img, 1, n, f);
		fclose(f);
		so = NULL;
		ep_error_clear(&err);
		int r = ep_elf_soname(cut, &so, &err);

		assert_true(r == -1 || r == 0 || (r == 1 && strcmp(so, "libcuda.so.1") == 0));
		free(so);
	}
	free(img);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void test_perf_8gpus(void **state)
{
	NEED_NODES();
	enum { N = 101 };
	double t[N];
	struct ep_error err = EP_ERROR_INIT;

	for (int i = 0; i < N; i++) {
		struct ep_gpu_plan p;
		double t0 = now_ms();

		assert_int_equal(ep_gpu_plan(tree8, "all", NULL, &p, &err), 0);
		t[i] = now_ms() - t0;
		assert_int_equal(p.n_gpus, 8);
		assert_non_null(dev(&p, "/dev/nvidia7"));
		ep_gpu_plan_release(&p);
	}
	qsort(t, N, sizeof(t[0]), cmp_d);
	printf("# gpu plan, 8-GPU fake tree: median %.3f ms, p90 %.3f ms, max %.3f ms (%d runs)\n",
	       t[N / 2], t[N * 9 / 10], t[N - 1], N);
	assert_true(t[N / 2] < 5.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plan_fake_tree),  cmocka_unit_test(test_none_is_empty),
	    cmocka_unit_test(test_select),	    cmocka_unit_test(test_bad_selection),
	    cmocka_unit_test(test_no_driver),	    cmocka_unit_test(test_missing_uvm),
	    cmocka_unit_test(test_cuda_table),	    cmocka_unit_test(test_driver_too_old),
	    cmocka_unit_test(test_cdi_json),	    cmocka_unit_test(test_cdi_yaml),
	    cmocka_unit_test(test_cdi_hostile),	    cmocka_unit_test(test_ldcache_real),
	    cmocka_unit_test(test_ldcache_hostile), cmocka_unit_test(test_elf_soname),
	    cmocka_unit_test(test_perf_8gpus),	    cmocka_unit_test(test_h100_replica),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
