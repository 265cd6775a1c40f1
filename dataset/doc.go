// Package dataset loads, holds and batches the image-classification data that
// robust trains and attacks models on.
//
// A [Dataset] is a set of images, read as float32 values in [0,1] laid out
// NCHW (sample, channel, row, column), with int64 class labels held in
// memory. The pixels are stored compactly for what they are: 8-bit sources
// (idx, CIFAR) as bytes, converted per batch (a quarter of the memory of
// float32); float sources (.npy/.npz float arrays) as float32; and image
// folders are streamed: files are listed up front and decoded, batch by
// batch, on a bounded pool of goroutines, so memory does not grow with the
// folder ([Dataset.Floats], [Dataset.Gather], [Dataset.Streamed]). Pixel
// normalisation (mean/std) is deliberately not applied here: by the
// project's convention it lives inside the model, after the adversarial
// perturbation has been added and the input clamped to [0,1].
//
// Loaders read the common on-disk formats:
//
//   - MNIST / Fashion-MNIST idx files, gzip-compressed or raw ([LoadIDX], [LoadMNISTDir]);
//   - CIFAR-10 and CIFAR-100 binary batches ([LoadCIFAR10], [LoadCIFAR100]);
//   - ImageNet-style class folders of JPEG/PNG (and BMP/TIFF/WebP) files,
//     streamed, resized and center-cropped as torchvision does
//     ([LoadImageFolder]); decompression bombs are refused from their
//     headers, and unreadable files either stop the run, named, or are
//     skipped and listed ([ImageFolderOptions]);
//   - WebDataset-style tar shards of such images with .cls labels, streamed
//     the same way ([LoadTarShards]);
//   - NumPy .npz archives or pairs of .npy files ([LoadNPZ], [LoadNPYPair]).
//
// [Open] turns a command-line spec such as "fashion-mnist", "cifar10:~/data"
// or "adv.npz" into a Dataset. [WriteNPZ] and [Dataset.SaveNPZ] write NumPy files
// (attacks use them to store adversarial examples).
//
// An [Iterator] cuts a Dataset into minibatches with per-epoch shuffling and
// optional augmentation ([Augment]: CIFAR's zero-padded random crop and
// horizontal flip, or torchvision's RandomResizedCrop for image folders),
// decoding streamed batches ahead of use. Everything random derives from an explicit seed, so an
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
