// Package onnxpb holds Go bindings for the ONNX protobuf schema, generated
// with protoc-gen-go from onnx.proto of ONNX 1.12 (IR version 8), as shipped
// by Debian's libonnx-dev. The proto package is renamed to robust.onnx so it
// can share a binary with other ONNX bindings; the wire format is ONNX's.
//
// Regenerate with:
//
//	protoc --go_out=. --go_opt=paths=source_relative \
//	  --go_opt=Monnx.proto=github.com/robust-go/robust/internal/onnxpb onnx.proto
package onnxpb
