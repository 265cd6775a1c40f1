// Package deps pins module dependencies that are not imported yet.
package deps

import (
	_ "github.com/alecthomas/kong"
	_ "github.com/owulveryck/onnx-go"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/yalue/onnxruntime_go"
	_ "google.golang.org/protobuf/proto"
	_ "gorgonia.org/tensor"
)
