package main

import (
	"fmt"
	"io"

	"github.com/robust-go/robust/dataset"
)

// dataFlags are the image-folder flags that train, harden, eval and attack
// share: ImageNet-style preprocessing and the handling of unreadable files.
type dataFlags struct {
	Resize    int   `placeholder:"N" help:"imagefolder and tar data: resize each image so that its shorter side is N pixels (bilinear, antialiased, as torchvision's Resize). Default: the crop size, or 256 when --crop is unset too."`
	Crop      int   `placeholder:"N" help:"imagefolder and tar data: centre crop of N×N pixels after resizing (torchvision's CenterCrop). Default 224."`
	SkipBad   bool  `name:"skip-bad" help:"imagefolder and tar data: leave out unreadable or oversized images, counted and listed on stderr, instead of stopping at the first one (every image is decoded once up front)."`
	MaxPixels int64 `name:"max-pixels" placeholder:"N" help:"imagefolder and tar data: refuse images whose header announces more than N pixels (decompression bombs). Default 89478485, PIL's limit."`
}

// open loads split of spec with the flags' image-folder options and reports
// skipped files on w.
func (f dataFlags) open(w io.Writer, spec, split string) (*dataset.Dataset, error) {
	d, err := dataset.Open(spec, split, dataset.Options{ImageFolder: dataset.ImageFolderOptions{
		Resize: f.Resize, Crop: f.Crop, SkipBad: f.SkipBad, MaxPixels: f.MaxPixels,
	}})
	if err != nil {
		return nil, err
	}
	if n := len(d.Skipped); n > 0 {
		fmt.Fprintf(w, "robust: skipped %d unreadable image(s) of %s (%s split):\n", n, spec, split)
		for _, b := range d.Skipped {
			fmt.Fprintf(w, "  %s: %s\n", b.Path, b.Err)
		}
	}
	return d, nil
}
