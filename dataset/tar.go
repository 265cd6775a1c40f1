package dataset

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxLabelBytes bounds the .cls member LoadTarShards reads: a class index
// in decimal text.
const maxLabelBytes = 64

// LoadTarShards opens WebDataset-style tar shards as a streamed [Dataset].
// pattern names the shards, with at most one brace range for numbered
// shards: "DIR/shard-{000..099}.tar" is shard-000.tar … shard-099.tar (the
// width of the first bound zero-pads the numbers). Each sample is a group of
// members sharing a key (the member path up to the first dot of its base
// name): an image (.jpg, .jpeg, .png, .bmp, .tif, .tiff or .webp) and a
// .cls member holding the class index as decimal text; other members are
// ignored. Samples keep the order of the shards and of their first member.
//
// The shards are indexed up front (tar headers only, skipping the image
// data) and images are read and decoded batch by batch as for
// [LoadImageFolder], with the same preprocessing and the same handling of
// oversized or unreadable images (named "SHARD.tar:MEMBER"). numClasses,
// when positive, is the number of classes; otherwise it is the largest
// label + 1. A missing shard, a damaged tar, or a sample without an image
// or a label is an error.
func LoadTarShards(pattern string, numClasses int, opts ImageFolderOptions) (*Dataset, error) {
	shards, err := expandShards(pattern)
	if err != nil {
		return nil, fmt.Errorf("dataset: tar shards %q: %w", pattern, err)
	}
	var items []streamItem
	maxL := -1
	for _, sh := range shards {
		got, err := indexShard(sh)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", sh, err)
		}
		for _, it := range got {
			maxL = max(maxL, it.label)
		}
		items = append(items, got...)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("load %s: %w: no samples in %d shard(s)", pattern, ErrEmpty, len(shards))
	}
	if numClasses <= 0 {
		numClasses = maxL + 1
	} else if maxL >= numClasses {
		return nil, fmt.Errorf("load %s: %w: label %d with %d classes", pattern, ErrLabelRange, maxL, numClasses)
	}
	name := strings.TrimSuffix(filepath.Base(shards[0]), ".tar")
	if i := strings.LastIndexAny(name, "-_"); i > 0 {
		name = name[:i]
	}
	return newStreamed(pattern, name, items, nil, numClasses, opts)
}

// shardRange matches one brace range {A..B} of decimal numbers.
var shardRange = regexp.MustCompile(`\{([0-9]+)\.\.([0-9]+)\}`)

// expandShards lists the files pattern names (see LoadTarShards).
func expandShards(pattern string) ([]string, error) {
	m := shardRange.FindAllStringSubmatchIndex(pattern, -1)
	if len(m) > 1 {
		return nil, errors.New("more than one {A..B} range")
	}
	if len(m) == 0 {
		return []string{pattern}, nil
	}
	loStr, hiStr := pattern[m[0][2]:m[0][3]], pattern[m[0][4]:m[0][5]]
	lo, err1 := strconv.Atoi(loStr)
	hi, err2 := strconv.Atoi(hiStr)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if hi < lo {
		return nil, fmt.Errorf("range {%s..%s} is empty", loStr, hiStr)
	}
	if hi-lo >= 1_000_000 {
		return nil, fmt.Errorf("range {%s..%s} names more than a million shards", loStr, hiStr)
	}
	width := len(loStr)
	out := make([]string, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, pattern[:m[0][0]]+fmt.Sprintf("%0*d", width, i)+pattern[m[0][1]:])
	}
	return out, nil
}

// offsetReader counts the bytes read or skipped, so that the offset of a
// tar member's data is known; tar.Reader skips data through Seek.
type offsetReader struct {
	f   *os.File
	pos int64
}

func (r *offsetReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

func (r *offsetReader) Seek(off int64, whence int) (int64, error) {
	p, err := r.f.Seek(off, whence)
	if err == nil {
		r.pos = p
	}
	return p, err
}

// indexShard lists the samples of one tar shard.
func indexShard(shard string) ([]streamItem, error) {
	f, err := os.Open(shard)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type sample struct {
		image    *streamItem
		label    int
		hasLabel bool
	}
	samples := map[string]*sample{}
	var keys []string
	r := &offsetReader{f: f}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: tar archive cut short", ErrTruncated)
			}
			return nil, fmt.Errorf("%w: tar: %v", ErrFormat, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		dir, base := path.Split(h.Name)
		stem, ext, ok := strings.Cut(base, ".")
		if !ok || strings.HasPrefix(base, ".") {
			continue
		}
		ext = strings.ToLower(ext)
		isImage := slices.Contains(imageExts, "."+ext)
		if !isImage && ext != "cls" {
			continue
		}
		key := dir + stem
		s := samples[key]
		if s == nil {
			s = &sample{}
			samples[key] = s
			keys = append(keys, key)
		}
		member := shard + ":" + h.Name
		if isImage {
			if s.image != nil {
				return nil, fmt.Errorf("%w: sample %q has two images (%s and %s)", ErrFormat, key, s.image.path, member)
			}
			s.image = &streamItem{path: member, shard: shard, offset: r.pos, size: h.Size}
			continue
		}
		if h.Size > maxLabelBytes {
			return nil, fmt.Errorf("%w: label member %s holds %d bytes, not a class index", ErrFormat, h.Name, h.Size)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrTruncated, h.Name, err)
		}
		l, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || l < 0 {
			return nil, fmt.Errorf("%w: label member %s holds %q, not a class index", ErrLabelRange, h.Name, b)
		}
		s.label, s.hasLabel = l, true
	}
	items := make([]streamItem, 0, len(keys))
	for _, key := range keys {
		s := samples[key]
		switch {
		case s.image == nil:
			return nil, fmt.Errorf("%w: sample %q has a label but no image", ErrCountMismatch, key)
		case !s.hasLabel:
			return nil, fmt.Errorf("%w: sample %q (%s) has no .cls label", ErrCountMismatch, key, s.image.path)
		}
		it := *s.image
		it.label = s.label
		items = append(items, it)
	}
	return items, nil
}
