// image_batch on every kernel set against the naive reference: the data set and the indices live on the
// set's device and the batch is assembled there, equal to naive bit for bit on every shared case
// (support/image_cases.h: the same draws, the same float expression), through the frontend and on the
// kernel into an output that starts as NaN; strided images and indices, and an empty batch. Hand-checked
// windows, the draw, and argument errors: tests/kernels/test_image.cpp; an index out of range on the GPU
// and mixed devices: tests/cuda/test_image.cpp.
#include "support/catch.h"

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/image.h"
#include "support/compare.h"
#include "support/image_cases.h"
#include "support/kernel_sets.h"
#include "support/tolerances.h"
#include "support/unwritten.h"

using namespace dyad;

namespace {

std::string describe(const test::ImageCase& k) {
    std::ostringstream os;
    os << "data set (" << k.count << ", " << k.h << ", " << k.w << ", " << k.c << "), batch " << k.batch << ", out "
       << k.aug.out_h << "x" << k.aug.out_w << ", pad " << k.aug.pad << ", crop " << k.aug.crop << ", flip "
       << k.aug.flip;
    return os.str();
}

// The images of case k as every other image of a data set twice as large (from image `image_at`), and its
// indices as every other element of a list twice as long (from `index_at`), on `device`.
struct StridedInputs {
    Tensor images, indices;
};
StridedInputs strided_inputs(const test::ImageCase& k, Device device, int64_t image_at, int64_t index_at) {
    StridedInputs v;
    v.images = Tensor::zeros({2 * k.count, k.h, k.w, k.c}, DType::uint8, device).slice(0, image_at, 2 * k.count, 2);
    v.images.copy_(test::image_data(k).to(device));
    v.indices = Tensor::zeros({2 * k.batch}, DType::int32, device).slice(0, index_at, 2 * k.batch, 2);
    v.indices.copy_(test::image_indices(k).to(device));
    return v;
}

}  // namespace

DYAD_KERNEL_TEST("image_batch frontend equals naive bit for bit on every case", "[image]") {
    NumThreadsGuard threads(3);  // omp: more than one thread even on a small machine
    for (const test::ImageCase& k : test::image_cases()) {
        INFO(describe(k));
        const Tensor images = test::image_data(k), idx = test::image_indices(k);
        const std::vector<float> mean = test::image_mean(k.c), std = test::image_std(k.c);
        const Tensor ref = test::naive_reference([&] { return image_batch(images, idx, mean, std, k.aug, k.seed); });
        const int64_t oh = k.aug.out_h ? k.aug.out_h : k.h, ow = k.aug.out_w ? k.aug.out_w : k.w;
        REQUIRE(ref.shape() == Shape{k.batch, k.c, oh, ow});
        // The normalised values of real pixels and padding only: no garbage, nothing non-finite.
        REQUIRE(all_finite(ref));
        const Tensor images_s = test::on(ks, images), idx_s = test::on(ks, idx);
        const Tensor out = image_batch(images_s, idx_s, mean, std, k.aug, k.seed);
        REQUIRE(out.device() == ks.device);
        test::require_close(ref, out, test::tol::exact(ks));
        // Another seed draws another batch where anything is random.
        if (k.aug.pad > 0 && k.aug.crop && k.batch > 4) {
            const Tensor other = image_batch(images_s, idx_s, mean, std, k.aug, k.seed + 1);
            REQUIRE_FALSE(test::same_bits(other.to(Device::cpu()).to_vector<float>(), ref.to_vector<float>()));
        }
    }
}

DYAD_KERNEL_TEST("image_batch kernel writes every output element: equal to naive into NaN", "[image]") {
    NumThreadsGuard threads(3);
    for (const test::ImageCase& k : test::image_cases()) {
        INFO(describe(k));
        const ImageBatchShape s = test::image_kernel_shape(k);
        const Tensor images = test::image_data(k), idx = test::image_indices(k);
        const std::vector<float> mean = test::image_mean(k.c), inv_std = test::image_inv_std(k.c);
        const int64_t n = s.batch * s.c * s.out_h * s.out_w;
        std::vector<float> ref = test::nan_filled<float>(n);
        naive::image_batch(s, ref.data(), images.data<uint8_t>(), idx.data<int32_t>(), mean.data(), inv_std.data(),
                           k.seed);
        REQUIRE(test::count_nan(ref) == 0);
        const Tensor images_s = test::on(ks, images), idx_s = test::on(ks, idx), out = test::nan_buffer(ks, n);
        const Tensor mean_s = test::buffer(ks, mean), inv_s = test::buffer(ks, inv_std);
        DYAD_KCALL(ks, image_batch, s, test::ptr(out), test::ptr<uint8_t>(images_s), test::ptr<int32_t>(idx_s),
                   test::ptr(mean_s), test::ptr(inv_s), k.seed);
        test::require_close(ref, test::host(out), test::tol::exact(ks));
    }
}

DYAD_KERNEL_TEST("image_batch: strided images and indices equal naive, empty batch", "[image]") {
    const test::ImageCase k = {6, 7, 9, 3, 11, {8, 8, 2, true, true}, 21};
    const Tensor images = test::image_data(k), idx = test::image_indices(k);
    const std::vector<float> mean = test::image_mean(3), std = test::image_std(3);
    const Tensor ref = test::naive_reference([&] { return image_batch(images, idx, mean, std, k.aug, k.seed); });
    const Tensor images_s = test::on(ks, images), idx_s = test::on(ks, idx);
    test::require_close(ref, image_batch(images_s, idx_s, mean, std, k.aug, k.seed), test::tol::exact(ks));
    // The even or the odd images of a data set twice as large, the odd or the even indices of a list twice
    // as long: on the CPU through naive, and on the set.
    for (const auto& at : {std::pair<int64_t, int64_t>{0, 1}, std::pair<int64_t, int64_t>{1, 0}}) {
        INFO("images from " << at.first << ", indices from " << at.second);
        const StridedInputs cpu = strided_inputs(k, Device::cpu(), at.first, at.second);
        const StridedInputs set = strided_inputs(k, ks.device, at.first, at.second);
        REQUIRE_FALSE(set.images.is_contiguous());
        REQUIRE_FALSE(set.indices.is_contiguous());
        test::require_close(
            ref, test::naive_reference([&] { return image_batch(cpu.images, cpu.indices, mean, std, k.aug, k.seed); }),
            test::tol::exact(ks));
        const Tensor out = image_batch(set.images, set.indices, mean, std, k.aug, k.seed);
        REQUIRE(out.device() == ks.device);
        test::require_close(ref, out, test::tol::exact(ks));
    }
    const Tensor none = Tensor::zeros({0}, DType::int32);
    const Tensor empty_ref = test::naive_reference([&] { return image_batch(images, none, mean, std, k.aug, k.seed); });
    REQUIRE(empty_ref.shape() == Shape{0, 3, 8, 8});
    const Tensor empty = image_batch(images_s, test::on(ks, none), mean, std, k.aug, k.seed);
    REQUIRE(empty.shape() == Shape{0, 3, 8, 8});
    REQUIRE(empty.device() == ks.device);
}
