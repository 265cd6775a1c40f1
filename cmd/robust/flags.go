package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/robust-go/robust/dataset"

	"github.com/robust-go/robust/evaluate"
)

// The flag groups below are shared between commands, one struct per group,
// embedded where a command needs it, so that a flag has one name, one
// meaning and one help text everywhere.

// DataFlags name the data set and, for image folders and tar shards, the
// ImageNet-style preprocessing and the handling of unreadable files; every
// command that reads data takes them.
type DataFlags struct {
	Data string `default:"fashion-mnist" placeholder:"SPEC" help:"Data set: fashion-mnist, mnist[:DIR], cifar10[:DIR], cifar100[:DIR], imagefolder:DIR, tar:DIR/shard-{000..099}.tar, FILE.npz or npy:X.npy,Y.npy (~ and $VAR are expanded)."`

	Resize    int   `placeholder:"N" help:"imagefolder and tar data: resize each image so that its shorter side is N pixels (bilinear, antialiased, as torchvision's Resize). Default: the crop size, or 256 when --crop is unset too."`
	Crop      int   `placeholder:"N" help:"imagefolder and tar data: centre crop of N×N pixels after resizing (torchvision's CenterCrop). Default 224."`
	SkipBad   bool  `name:"skip-bad" help:"imagefolder and tar data: leave out unreadable or oversized images, counted and listed on stderr and in robust eval's reports, instead of stopping at the first one (every image is decoded once up front)."`
	MaxPixels int64 `name:"max-pixels" placeholder:"N" help:"imagefolder and tar data: refuse images whose header announces more than N pixels (decompression bombs). Default 89478485, PIL's limit."`
}

// open loads split of spec with the flags' image-folder options and reports
// skipped files on w.
func (f DataFlags) open(w io.Writer, spec, split string) (*dataset.Dataset, error) {
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

// InputFlags describe the model's input convention, for eval, attack and
// harden. robust's images are in [0,1]; --range scales them to the model's
// range, then --mean and --std normalise them, both in the model's range:
// the model sees (range·x − mean)/std. Models that normalise inside the
// graph need none of them.
type InputFlags struct {
	Range  string `default:"0,1" placeholder:"0,1|0,255" help:"Input range the model expects; robust scales its [0,1] images to it."`
	Mean   string `placeholder:"M[,M,M]" help:"Per-channel mean the model expects subtracted, in the model's input range (after --range): the model sees (x − mean)/std (default 0)."`
	Std    string `placeholder:"S[,S,S]" help:"Per-channel standard deviation the model expects divided out, in the model's input range (default 1)."`
	Layout string `default:"auto" enum:"auto,nchw,nhwc" help:"Model input layout (${enum}); NHWC models get a Transpose."`
	Input  string `placeholder:"NAME" help:"Image input of a model with several inputs."`
	Output string `aliases:"logits" placeholder:"NAME" help:"Logits output of a model with several outputs."`
}

// contract turns the flags into an evaluate.Contract.
func (f *InputFlags) contract() (evaluate.Contract, error) {
	c := evaluate.Contract{Input: f.Input, Logits: f.Output}
	var err error
	if c.Scale, err = evaluate.ParseRange(f.Range); err != nil {
		return c, fmt.Errorf("--range: %w", err)
	}
	if c.Mean, err = evaluate.ParseFloats(f.Mean); err != nil {
		return c, fmt.Errorf("--mean: %w", err)
	}
	if c.Std, err = evaluate.ParseFloats(f.Std); err != nil {
		return c, fmt.Errorf("--std: %w", err)
	}
	if c.Layout, err = evaluate.ParseLayout(f.Layout); err != nil {
		return c, fmt.Errorf("--layout: %w", err)
	}
	return c, nil
}

// TrainFlags are the training recipe and run-control flags that train and
// harden share. Defaults that differ between the two are set by the
// embedding command with kong's set tag (train trains from scratch, harden fine-tunes a
// trained model: fewer epochs, a lower learning rate, fewer replays).
type TrainFlags struct {
	Eps      string  `default:"0.1" placeholder:"EPS" help:"L∞ radius of the training perturbations, for images in [0,1]: 0.1, 8/255, ..."`
	Replays  int     `short:"m" default:"${replays}" help:"Free training: replays of each minibatch (the paper's m; train 8, harden 4)."`
	Epochs   int     `default:"${epochs}" help:"Epoch-equivalents (train 16, harden 8). natural, pgd and fast make this many passes over the data; free makes ⌈epochs/replays⌉ passes, so that every method takes about the same number of gradient steps."`
	Batch    int     `default:"128" help:"Minibatch size."`
	LR       float64 `name:"lr" default:"${lr}" help:"Base learning rate (train 0.05; harden 0.02, lower for fine-tuning)."`
	Schedule string  `default:"piecewise" placeholder:"SPEC" help:"Learning-rate schedule over the weight updates (replays count): constant, piecewise[:F1,F2] (×0.1 at fractions F of the run; default 0.5,0.75), cyclic[:PEAK] (0 → lr at PEAK → 0), cosine."`
	Momentum float64 `default:"0.9" help:"SGD momentum."`
	WD       float64 `name:"wd" default:"5e-4" help:"Weight decay, on convolution and linear weights only."`
	WDAll    bool    `name:"wd-all" help:"Apply weight decay to biases and BatchNormalization parameters too."`
	Augment  string  `default:"none" placeholder:"none|crop:P,flip" help:"Training augmentation: none, or a comma list of crop:P (zero-pad P pixels and crop back at random), flip (mirror half the images) and random-resized-crop:N (image folders: torchvision's RandomResizedCrop to N×N, N = --crop), e.g. crop:4,flip for CIFAR, random-resized-crop:224,flip for ImageNet."`
	Seed     uint64  `default:"0" help:"Seed of the initial weights, data order, held-out split and random starts."`

	CheckpointEvery int  `name:"checkpoint-every" default:"500" placeholder:"STEPS" help:"Also checkpoint every this many weight updates (0: only after each pass and on Ctrl-C). Checkpoints are written atomically."`
	Resume          bool `help:"Continue an interrupted run from its checkpoint, exactly where it stopped (same flags required)."`
	Progress        bool `default:"true" negatable:"" help:"Show a progress bar on stderr."`
}

// Validate refuses counts that would otherwise silently mean something
// else.
func (f *TrainFlags) Validate() error {
	return checkCounts(
		count{"--replays", f.Replays, 1, ""},
		count{"--epochs", f.Epochs, 1, ""},
		count{"--batch", f.Batch, 1, ""},
		count{"--checkpoint-every", f.CheckpointEvery, 0, "only after each pass"},
	)
}

// count is a count flag's value and the least it may be; zero says what 0
// means when the least is 0.
type count struct {
	flag         string
	value, least int
	zero         string
}

// checkCounts refuses every count below its least value, so that no count
// silently means something else (a zero read as "the default").
func checkCounts(counts ...count) error {
	var errs []error
	for _, c := range counts {
		switch {
		case c.value >= c.least:
		case c.least == 0:
			errs = append(errs, fmt.Errorf("%s %d: want 0 (%s) or more", c.flag, c.value, c.zero))
		default:
			errs = append(errs, fmt.Errorf("%s %d: want at least %d", c.flag, c.value, c.least))
		}
	}
	return errors.Join(errs...)
}
