// Package dataset loads, holds and batches the image-classification data that
// robust trains and attacks models on.
//
// A [Dataset] keeps every image in memory as float32 values in [0,1], laid out
// NCHW (sample, channel, row, column), together with int64 class labels. Pixel
// normalisation (mean/std) is deliberately not applied here: by the project's
// convention it lives inside the model, after the adversarial perturbation has
// been added and the input clamped to [0,1].
//
// Loaders read the common on-disk formats:
//
//   - MNIST / Fashion-MNIST idx files, gzip-compressed or raw ([LoadIDX], [LoadMNISTDir]);
//   - CIFAR-10 and CIFAR-100 binary batches ([LoadCIFAR10], [LoadCIFAR100]);
//   - ImageNet-style class folders of JPEG/PNG files, resized and center-cropped
//     ([LoadImageFolder]);
//   - NumPy .npz archives or pairs of .npy files ([LoadNPZ], [LoadNPYPair]).
//
// [Open] turns a command-line spec such as "fashion-mnist", "cifar10:DIR" or
// "adv.npz" into a Dataset. [WriteNPZ] and [Dataset.SaveNPZ] write NumPy files
// (attacks use them to store adversarial examples).
//
// An [Iterator] cuts a Dataset into minibatches with per-epoch shuffling and
// optional CIFAR-style augmentation ([Augment]: zero-padded random crop and
// horizontal flip). Everything random derives from an explicit seed, so an
// epoch's order and augmentations are a pure function of (seed, epoch, batch):
// an Iterator's [IteratorState] can be saved in a checkpoint and restored to
// resume training at exactly the same batch. [Iterator.NextInto] fills
// caller-owned buffers without allocating, for training loops that copy each
// batch into pre-allocated runtime tensors.
//
// Malformed files never cause a panic: loaders return errors that name the
// file and what is wrong with it, and that wrap one of the package's sentinel
// errors ([ErrFormat], [ErrTruncated], ...) for use with [errors.Is].
package dataset
