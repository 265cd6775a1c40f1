package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options holds loader settings for [Open].
type Options struct {
	// ImageFolder configures "imagefolder:" and "tar:" specs.
	ImageFolder ImageFolderOptions
	// NumClasses, when positive, fixes the number of classes of "npz:",
	// "npy:" and "tar:" datasets, whose labels need not cover every class;
	// 0 infers it (an .npz's num_classes array, else the largest label + 1).
	NumClasses int
}

// SpecForms documents the dataset specs [Open] accepts, for command-line help.
//
// Paths may start with ~/ and hold $VAR or ${VAR}, expanded as a shell would.
const SpecForms = `fashion-mnist | mnist | cifar10 | cifar100  ($ROBUST_DATA_DIR/<name>, else /usr/share/datasets/<name>)
mnist:DIR | fashion-mnist:DIR                   ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz])
cifar10:DIR | cifar100:DIR                      (CIFAR binary version)
imagefolder:DIR                                 (DIR[/train|/val|/test]/<class>/*.{jpg,jpeg,png,bmp,tif,tiff,webp})
tar:DIR/shard-{000..099}.tar                    (WebDataset shards: KEY.jpg|png|... + KEY.cls; same data for both splits)
npz:FILE.npz | FILE.npz                         (arrays x, y or x_<split>, y_<split>)
npy:X.npy,Y.npy                                 (image and label arrays)`

// Open loads the split ("train" or "test") of the dataset named by spec; see
// [SpecForms] for the accepted forms.
//
// A bare name looks in $ROBUST_DATA_DIR/<name> and then in
// /usr/share/datasets/<name> (where Debian's dataset-fashion-mnist package
// puts Fashion-MNIST). For "imagefolder:DIR", the split's subdirectory
// DIR/train, or DIR/test or DIR/val for the test split, is used when it
// exists, else DIR itself. .npz archives without split-specific arrays give
// the same data for both splits.
func Open(spec, split string, opts Options) (*Dataset, error) {
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("dataset: split %q: want \"train\" or \"test\"", split)
	}
	train := split == "train"
	scheme, arg, hasArg := strings.Cut(spec, ":")
	if !hasArg {
		scheme, arg = spec, ""
		if strings.HasSuffix(strings.ToLower(spec), ".npz") {
			scheme, arg = "npz", spec
		} else if _, known := bareNames[spec]; known {
			arg = defaultDir(spec, filepath.Join("/usr/share/datasets", spec))
		}
	} else if arg == "" {
		return nil, fmt.Errorf("dataset: spec %q lacks a path after %q\nvalid forms:\n%s", spec, scheme+":", SpecForms)
	}
	if hasArg || scheme == "npz" {
		var err error
		if arg, err = expandPath(arg); err != nil {
			return nil, fmt.Errorf("dataset: spec %q: %w", spec, err)
		}
	}

	var (
		d   *Dataset
		err error
	)
	switch scheme {
	case "mnist":
		d, err = LoadMNISTDir(arg, train)
	case "fashion-mnist":
		d, err = LoadFashionMNIST(arg, train)
	case "cifar10":
		d, err = LoadCIFAR10(arg, train)
	case "cifar100":
		d, err = LoadCIFAR100(arg, train)
	case "imagefolder":
		d, err = LoadImageFolder(splitDir(arg, split), opts.ImageFolder)
		if d != nil {
			d.Name = filepath.Base(filepath.Clean(arg))
		}
	case "tar":
		d, err = LoadTarShards(arg, opts.NumClasses, opts.ImageFolder)
	case "npz":
		d, err = LoadNPZ(arg, split)
		if err == nil && opts.NumClasses > 0 {
			err = setNumClasses(d, opts.NumClasses, arg)
		}
		return d, err
	case "npy":
		xPath, yPath, ok := strings.Cut(arg, ",")
		if !ok || xPath == "" || yPath == "" {
			return nil, fmt.Errorf("dataset: spec %q: want npy:X.npy,Y.npy", spec)
		}
		return LoadNPYPair(xPath, yPath, opts.NumClasses)
	default:
		if hasArg && strings.HasSuffix(strings.ToLower(spec), ".npz") { // a path with a colon
			return Open("npz:"+spec, split, opts)
		}
		return nil, fmt.Errorf("dataset: unknown dataset spec %q\nvalid forms:\n%s", spec, SpecForms)
	}
	if err != nil {
		return nil, err
	}
	d.Partition = split
	return d, nil
}

// expandPath expands $VAR and ${VAR} in each comma-separated part of p, and
// a leading ~ or ~/ to the user's home directory, as a shell would for a
// path typed on the command line (a spec given as --data cifar10:~/data
// reaches the program unexpanded). An unset variable is an error rather
// than an empty string, which would silently turn the path into another.
func expandPath(p string) (string, error) {
	var missing []string
	parts := strings.Split(p, ",")
	for i, part := range parts {
		part = os.Expand(part, func(name string) string {
			v, ok := os.LookupEnv(name)
			if !ok {
				missing = append(missing, "$"+name)
			}
			return v
		})
		if part == "~" || strings.HasPrefix(part, "~/") {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("expand ~: %w", err)
			}
			part = home + part[1:]
		}
		parts[i] = part
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return strings.Join(parts, ","), nil
}

// bareNames are the datasets Open accepts without a path.
var bareNames = map[string]struct{}{"mnist": {}, "fashion-mnist": {}, "cifar10": {}, "cifar100": {}}

// splitDir returns dir's subdirectory for split when it exists, else dir.
func splitDir(dir, split string) string {
	subs := []string{"train"}
	if split == "test" {
		subs = []string{"test", "val"}
	}
	for _, s := range subs {
		p := filepath.Join(dir, s)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return dir
}

// setNumClasses overrides d's class count, checking the labels against it.
func setNumClasses(d *Dataset, n int, path string) error {
	if err := checkLabels(d.Y, n); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	d.NumClasses = n
	if len(d.Classes) != n {
		d.Classes = nil
	}
	return nil
}
