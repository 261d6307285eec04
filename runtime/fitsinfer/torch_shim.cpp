// runtime/fitsinfer/torch_shim.cpp - see torch_shim.h.  Kept to one small
// file on purpose: compiling against libtorch costs ~30 s per file here.
#include "torch_shim.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>

namespace {

double now_ms()
{
	using namespace std::chrono;
	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

void fail(char *err, size_t errlen, const char *what, const std::exception &e)
{
	// c10::Error messages carry a C++ backtrace after the first line.
	std::snprintf(err, errlen, "%s: %s", what, e.what());
	char *nl = std::strchr(err, '\n');
	if (nl)
		*nl = 0;
}

torch::Device pick(int device)
{
	if (device == TS_CUDA) {
		if (!torch::cuda::is_available())
			throw std::runtime_error("CUDA is not available to libtorch");
		return torch::Device(torch::kCUDA, 0);
	}
	return torch::Device(torch::kCPU);
}

void set_flags(int tf32, struct ts_flags *fl)
{
	auto &ctx = at::globalContext();
	ctx.setAllowTF32CuDNN(tf32 != 0);
	ctx.setAllowTF32CuBLAS(tf32 != 0);
	ctx.setDeterministicCuDNN(true);
	ctx.setBenchmarkCuDNN(false);
	if (fl) {
		fl->tf32_cudnn = ctx.allowTF32CuDNN();
		fl->tf32_cublas = ctx.allowTF32CuBLAS();
		fl->deterministic_cudnn = ctx.deterministicCuDNN();
		fl->benchmark_cudnn = ctx.benchmarkCuDNN();
	}
}

void sync(const torch::Device &d)
{
	if (d.is_cuda())
		torch::cuda::synchronize();
}

} // namespace

extern "C" int ts_info(struct ts_info *info, char *err, size_t errlen)
{
	try {
		std::memset(info, 0, sizeof(*info));
		info->abi = TS_ABI;
		std::snprintf(info->torch_version, sizeof(info->torch_version), "%d.%d.%d", TORCH_VERSION_MAJOR,
			      TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
		info->cuda_available = torch::cuda::is_available();
		info->cuda_devices = (int)torch::cuda::device_count();
		if (info->cuda_available && at::detail::getCUDAHooks().hasCuDNN())
			info->cudnn_version = at::detail::getCUDAHooks().versionCuDNN();
		info->threads = torch::get_num_threads();
		return 0;
	} catch (const std::exception &e) {
		fail(err, errlen, "libtorch", e);
		return -1;
	}
}

extern "C" int ts_detect(int device, int tf32, const float *z, int nx, int ny, const float *k, int ks,
			 float thresh, float *snr, uint8_t *pm, struct ts_flags *flags, struct ts_timing *tm,
			 char *err, size_t errlen)
{
	try {
		torch::NoGradGuard ng;
		torch::Device dev = pick(device);
		set_flags(tf32, flags);
		double t0 = now_ms();
		auto opt = torch::TensorOptions().dtype(torch::kFloat32);
		auto zin = torch::from_blob(const_cast<float *>(z), {1, 1, ny, nx}, opt).to(dev);
		auto w = torch::from_blob(const_cast<float *>(k), {1, 1, ks, ks}, opt).to(dev);
		sync(dev);
		double t1 = now_ms();
		auto s = torch::conv2d(zin, w, {}, 1, ks / 2);
		auto mp = torch::max_pool2d(s, 3, 1, 1);
		auto peaks = torch::logical_and(torch::eq(s, mp), torch::gt(s, thresh)).to(torch::kUInt8);
		sync(dev);
		double t2 = now_ms();
		auto sc = s.to(torch::kCPU).contiguous();
		auto pc = peaks.to(torch::kCPU).contiguous();
		std::memcpy(snr, sc.data_ptr<float>(), sizeof(float) * (size_t)nx * ny);
		std::memcpy(pm, pc.data_ptr<uint8_t>(), (size_t)nx * ny);
		double t3 = now_ms();
		if (tm) {
			tm->to_device_ms = t1 - t0;
			tm->forward_ms = t2 - t1;
			tm->to_host_ms = t3 - t2;
		}
		return 0;
	} catch (const std::exception &e) {
		fail(err, errlen, "matched filter", e);
		return -1;
	}
}

extern "C" int ts_mlp_forward(int device, int tf32, const struct ts_mlp *m, const float *x, int n, float *out,
			      char *err, size_t errlen)
{
	try {
		torch::NoGradGuard ng;
		torch::Device dev = pick(device);
		set_flags(tf32, nullptr);
		if (n == 0)
			return 0;
		auto opt = torch::TensorOptions().dtype(torch::kFloat32);
		auto blob = [&](const float *p, at::IntArrayRef shape) {
			return torch::from_blob(const_cast<float *>(p), shape, opt).to(dev);
		};
		auto xin = blob(x, {n, m->nin});
		auto a = xin * blob(m->inscale, {m->nin}) + blob(m->inbias, {m->nin});
		auto h = torch::sigmoid(torch::nn::functional::linear(a, blob(m->w1, {m->nh, m->nin}),
								       blob(m->b1, {m->nh})));
		auto y = torch::sigmoid(torch::nn::functional::linear(h, blob(m->w2, {1, m->nh}), blob(m->b2, {1})));
		y = ((y - m->outbias) / m->outscale).reshape({n}).to(torch::kCPU).contiguous();
		std::memcpy(out, y.data_ptr<float>(), sizeof(float) * (size_t)n);
		return 0;
	} catch (const std::exception &e) {
		fail(err, errlen, "CLASS_STAR network", e);
		return -1;
	}
}
