package dataset_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"path/filepath"

	"github.com/robust-go/robust/dataset"
)

// An image folder is streamed: opening it lists the files and checks their
// headers; batches are decoded, resized and center-cropped as they are
// needed, here with torchvision's RandomResizedCrop and flip for training.
func ExampleLoadImageFolder() {
	dir, err := os.MkdirTemp("", "imagefolder-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Two classes of 40×30 images, three each.
	for i := range 6 {
		img := image.NewRGBA(image.Rect(0, 0, 40, 30))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*i) | 0x80
		}
		img.Set(0, 0, color.RGBA{255, 0, 0, 255})
		path := filepath.Join(dir, []string{"cat", "dog"}[i%2], fmt.Sprintf("%d.png", i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}

	d, err := dataset.LoadImageFolder(dir, dataset.ImageFolderOptions{Resize: 18, Crop: 16})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Len(), "images of", d.C, "×", d.H, "×", d.W, "streamed:", d.Streamed(), d.Classes)

	aug, err := dataset.ParseAugment("random-resized-crop:16,flip")
	if err != nil {
		log.Fatal(err)
	}
	it, err := dataset.NewIterator(d, dataset.IteratorOptions{BatchSize: 4, Shuffle: true, Seed: 1, Augment: aug})
	if err != nil {
		log.Fatal(err)
	}
	for {
		b, ok := it.Next()
		if !ok {
			break
		}
		fmt.Println("batch", b.X.Shape())
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 6 images of 3 × 16 × 16 streamed: true [cat dog]
	// batch (4, 3, 16, 16)
	// batch (2, 3, 16, 16)
}

// Whatever the storage, Floats reads a range of samples as float32 values
// in [0,1]: here 8-bit pixels, converted per call.
func ExampleDataset_Floats() {
	d := &dataset.Dataset{Name: "bytes", C: 1, H: 1, W: 3, NumClasses: 2,
		Pix: []uint8{0, 51, 255, 102, 153, 204}, Y: []int64{0, 1}}
	x, err := d.Floats(nil, 1, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(x)
	// Output: [0.4 0.6 0.8]
}

// WebDataset-style shards: each sample is an image and a .cls label that
// share a key; a brace range names numbered shards.
func ExampleLoadTarShards() {
	dir, err := os.MkdirTemp("", "tar-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for s := range 2 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("shard-%02d.tar", s)))
		if err != nil {
			log.Fatal(err)
		}
		tw := tar.NewWriter(f)
		for i := range 3 {
			var img bytes.Buffer
			if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 12, 10))); err != nil {
				log.Fatal(err)
			}
			key := fmt.Sprintf("sample%d%d", s, i)
			for _, m := range []struct {
				name string
				data []byte
			}{{key + ".png", img.Bytes()}, {key + ".cls", []byte(fmt.Sprint(i))}} {
				if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data))}); err != nil {
					log.Fatal(err)
				}
				if _, err := tw.Write(m.data); err != nil {
					log.Fatal(err)
				}
			}
		}
		if err := tw.Close(); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}

	d, err := dataset.LoadTarShards(filepath.Join(dir, "shard-{00..01}.tar"), 0, dataset.ImageFolderOptions{Resize: 8, Crop: 8})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Len(), "samples,", d.NumClasses, "classes, labels", d.Y)
	// Output: 6 samples, 3 classes, labels [0 1 2 0 1 2]
}
