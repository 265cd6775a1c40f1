package dataset

import (
	"archive/tar"
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// tarMember is a file of a test shard.
type tarMember struct {
	name string
	data []byte
}

func writeTar(t *testing.T, path string, members []tarMember) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func pngBytes(t *testing.T, k int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, patternRGBA(9, 8, func(x, y, c int) uint8 { return uint8(x*20 + y*3 + c*40 + k*11) })); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTarShards reads two shards and compares every sample with the same
// image read from a folder.
func TestTarShards(t *testing.T) {
	dir := t.TempDir()
	folder := t.TempDir()
	var want []int64
	k := 0
	for s := range 2 {
		var members []tarMember
		for i := range 3 {
			key := "s" + strconv.Itoa(s) + "/" + strconv.Itoa(i)
			label := (s*3 + i) % 4
			img := pngBytes(t, k)
			// Label before or after the image, plus an ignored member.
			if i%2 == 0 {
				members = append(members, tarMember{key + ".cls", []byte(strconv.Itoa(label) + "\n")}, tarMember{key + ".png", img})
			} else {
				members = append(members, tarMember{key + ".png", img}, tarMember{key + ".json", []byte("{}")}, tarMember{key + ".cls", []byte(strconv.Itoa(label))})
			}
			writeFile(t, filepath.Join(folder, "c", "k"+strconv.Itoa(k)+".png"), img)
			want = append(want, int64(label))
			k++
		}
		writeTar(t, filepath.Join(dir, "train-00"+strconv.Itoa(s)+".tar"), members)
	}
	opts := Options{ImageFolder: ImageFolderOptions{Resize: 8, Crop: 8}}
	d, err := Open("tar:"+filepath.Join(dir, "train-{000..001}.tar"), "train", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Streamed() || d.Len() != 6 || d.NumClasses != 4 || !slices.Equal(d.Y, want) || d.Name != "train" {
		t.Fatalf("got %v streamed %v labels %v", d, d.Streamed(), d.Y)
	}
	ref, err := LoadImageFolder(folder, opts.ImageFolder)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Floats(nil, 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := ref.Floats(nil, 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, exp) {
		t.Error("tar samples differ from the same images in a folder")
	}
	if d, err := LoadTarShards(filepath.Join(dir, "train-000.tar"), 10, opts.ImageFolder); err != nil || d.Len() != 3 || d.NumClasses != 10 {
		t.Errorf("one shard, 10 classes: %v %v", d, err)
	}
}

func TestTarShardErrors(t *testing.T) {
	dir := t.TempDir()
	img := pngBytes(t, 0)
	shard := func(name string, members ...tarMember) string {
		p := filepath.Join(dir, name)
		writeTar(t, p, members)
		return p
	}
	opts := ImageFolderOptions{Crop: 8}
	for _, tc := range []struct {
		name    string
		pattern string
		target  error
		subs    []string
	}{
		{"missing shard", filepath.Join(dir, "none-{0..1}.tar"), os.ErrNotExist, []string{"none-0.tar"}},
		{"no label", shard("nolabel.tar", tarMember{"a.png", img}), ErrCountMismatch, []string{`"a"`, "no .cls"}},
		{"no image", shard("noimage.tar", tarMember{"a.cls", []byte("1")}), ErrCountMismatch, []string{"no image"}},
		{"bad label", shard("badlabel.tar", tarMember{"a.png", img}, tarMember{"a.cls", []byte("cat")}), ErrLabelRange, []string{"a.cls"}},
		{"not an image", shard("garbage.tar", tarMember{"a.jpg", []byte("garbage")}, tarMember{"a.cls", []byte("0")}), ErrFormat, []string{"garbage.tar:a.jpg"}},
		{"bomb", shard("bomb.tar", tarMember{"a.png", pngHeader(1<<20, 1<<20)}, tarMember{"a.cls", []byte("0")}), ErrTooLarge, []string{"bomb.tar:a.png"}},
		{"two ranges", filepath.Join(dir, "{0..1}-{0..1}.tar"), nil, []string{"more than one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadTarShards(tc.pattern, 0, opts)
			if tc.target == nil {
				if err == nil {
					t.Fatal("no error")
				}
				wantErr(t, err, err, tc.subs...)
				return
			}
			wantErr(t, err, tc.target, tc.subs...)
		})
	}
	// A shard cut short.
	p := shard("cut.tar", tarMember{"a.png", img}, tarMember{"a.cls", []byte("0")}, tarMember{"b.png", img}, tarMember{"b.cls", []byte("1")})
	raw, _ := os.ReadFile(p)
	writeFile(t, p, raw[:700])
	if _, err := LoadTarShards(p, 0, opts); err == nil {
		t.Error("truncated shard accepted")
	}
	// With SkipBad the bad image is listed and the rest kept.
	p = shard("mixed.tar", tarMember{"a.png", img}, tarMember{"a.cls", []byte("0")}, tarMember{"b.jpg", []byte("junk")}, tarMember{"b.cls", []byte("1")})
	d, err := LoadTarShards(p, 0, ImageFolderOptions{Crop: 8, SkipBad: true})
	if err != nil || d.Len() != 1 || len(d.Skipped) != 1 || d.Skipped[0].Path != p+":b.jpg" {
		t.Fatalf("SkipBad: %v %v", d, err)
	}
}
