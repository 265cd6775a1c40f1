package zoo

import "fmt"

// shortcutKind is how a residual unit that changes width or resolution maps
// its input to the output's shape.
type shortcutKind int

const (
	// projection is a 1×1 convolution without bias, with the unit's stride.
	projection shortcutKind = iota
	// poolPad is average pooling (kernel = stride, skipped for stride 1)
	// followed by zero channels added equally on both sides: the
	// parameter-free shortcut of the TensorFlow ResNet that Madry et al.'s
	// CIFAR-10 model is based on.
	poolPad
)

// preActStyle describes one family of pre-activation residual networks.
// Every unit is
//
//	out = conv2(act(bn2(conv1(act(bn1(x)))))) + shortcut
//
// where conv1 is 3×3 with the unit's stride, conv2 is 3×3, and the shortcut
// is x itself when the unit keeps width and resolution.
type preActStyle struct {
	// unit names unit i (from 0) of stage g (from 1), e.g. "layer2.0".
	unit func(g, i int) string
	// bn1 names the unit's first batch normalisation ("bn1").
	bn1 string
	// shortcut names the projection convolution ("shortcut.0").
	shortcut string
	kind     shortcutKind
	// activated reports whether the changing shortcut of stage g's first
	// unit reads act(bn1(x)) rather than x.
	activated func(g int) bool
}

// preActStage appends count units of width out to stage g; the first unit
// has the given stride.
func (n *net) preActStage(x value, st preActStyle, g, count int, out, stride int64) value {
	for i := range count {
		s := int64(1)
		if i == 0 {
			s = stride
		}
		x = n.preActUnit(x, st, g, st.unit(g, i), out, s)
	}
	return x
}

func (n *net) preActUnit(x value, st preActStyle, g int, name string, out, stride int64) value {
	a := n.bnAct(x, name+"."+st.bn1)
	y := n.conv(a, name+".conv1", out, 3, stride, 1, false)
	y = n.conv(n.bnAct(y, name+".bn2"), name+".conv2", out, 3, 1, 1, false)
	if stride == 1 && x.c == out {
		return n.add(y, x, name)
	}
	short := x
	if st.activated(g) {
		short = a
	}
	switch st.kind {
	case projection:
		short = n.conv(short, name+"."+st.shortcut, out, 1, stride, 0, false)
	case poolPad:
		if stride != 1 {
			short = n.avgPool(short, stride)
		}
		if (out-short.c)%2 != 0 {
			n.failf("%s: cannot pad %d channels to %d on both sides equally", name, short.c, out)
		}
		short = n.padChannels(short, name+".shortcut_pad", (out-short.c)/2, (out-short.c)/2)
	}
	return n.add(y, short, name)
}

// preActResNet18 is the PreActResNet18 of Wong, Rice & Kolter, "Fast is
// better than free" (github.com/locuslab/fast_adversarial,
// CIFAR10/preact_resnet.py): conv3×3 64, four stages of two PreActBlocks
// (64, 128, 256, 512; stride 1, 2, 2, 2) whose projection shortcut reads the
// block's raw input, then BN, ReLU, average pooling (avg_pool2d(4) on the
// 4×4 map of a 32×32 input: GlobalAveragePool here) and Linear 512→classes.
// It keeps PyTorch's default initialisation (the reference code sets none).
func preActResNet18(n *net, x value, classes int64) value {
	st := preActStyle{
		unit:      func(g, i int) string { return fmt.Sprintf("layer%d.%d", g, i) },
		bn1:       "bn1",
		shortcut:  "shortcut.0",
		kind:      projection,
		activated: func(int) bool { return false },
	}
	x = n.conv(x, "conv1", 64, 3, 1, 1, false)
	for g, width := range []int64{64, 128, 256, 512} {
		stride := int64(2)
		if g == 0 {
			stride = 1
		}
		x = n.preActStage(x, st, g+1, 2, width, stride)
	}
	x = n.pool(n.bnAct(x, "bn"))
	return n.linear(x, "linear", classes)
}

// wideResNet34 is the WRN-34-10 of TRADES (github.com/yaodongyu/TRADES,
// models/wideresnet.py), the usual PyTorch port of Madry et al.'s model:
// conv3×3 16, three NetworkBlocks of five BasicBlocks (160, 320, 640; stride
// 1, 2, 2) whose convShortcut reads act(bn1(x)), then BN, ReLU, average
// pooling and Linear 640→classes. Convolutions are N(0, 2/(k·k·out)), BN
// weight 1 and bias 0, Linear weight PyTorch's default and bias 0. The
// unused sub_block1 of the reference code (registered but never called) is
// left out.
func wideResNet34(n *net, x value, classes int64) value {
	st := preActStyle{
		unit:      func(g, i int) string { return fmt.Sprintf("block%d.layer.%d", g, i) },
		bn1:       "bn1",
		shortcut:  "convShortcut",
		kind:      projection,
		activated: func(int) bool { return true },
	}
	return n.wideResNet(x, st, "conv1", "bn1", "fc", classes)
}

// wideResNet32 is the CIFAR-10 model of Madry et al.'s cifar10_challenge
// (github.com/MadryLab/cifar10_challenge, model.py), which the free
// adversarial training seed code (github.com/ashafahi/free_adv_train,
// free_model.py) trains and calls WRN-32-10: 1 + 3·5·2 convolutions + 1
// linear layer = 32 weight layers, filters [16, 160, 320, 640]. Its units
// use leaky ReLU (slope 0.1), TensorFlow "SAME" padding and parameter-free
// shortcuts (average pooling with kernel = stride, then zero channels padded
// on both sides); the first unit's shortcut reads the activated input
// (activate_before_residual), the others the raw input. Batch normalisation
// is tf.contrib.layers.batch_norm (scale and center, epsilon 1e-3, decay 0.9).
// Convolutions are N(0, 2/(k·k·out)); the logit layer is
// uniform_unit_scaling (U(±√(3/640))) with zero bias.
//
// Names follow the TensorFlow scopes: "unit_1_0.conv1.weight" is
// unit_1_0/sub1/conv1/DW (transposed from HWIO to OIHW), "unit_1_0.init_bn"
// is unit_1_0/{shared_activation,residual_only_activation}/init_bn with
// weight = gamma, bias = beta, running_mean/var = moving_mean/variance, and
// "logit.weight" is logit/DW transposed.
//
// The reference model standardises each image (tf.image.per_image_standardization);
// the zoo's input normalisation is a fixed per-channel affine map, so this
// model uses the CIFAR-10 channel statistics instead.
func wideResNet32(n *net, x value, classes int64) value {
	st := preActStyle{
		unit:      func(g, i int) string { return fmt.Sprintf("unit_%d_%d", g, i) },
		bn1:       "init_bn",
		kind:      poolPad,
		activated: func(g int) bool { return g == 1 },
	}
	return n.wideResNet(x, st, "init_conv", "final_bn", "logit", classes)
}

// wideResNet appends the layers that WRN-32-10 and WRN-34-10 share: a 3×3
// convolution to 16 channels, three stages of five units of widths 160, 320
// and 640 (stride 1, 2, 2), BN, activation, global average pooling and the
// linear classifier.
func (n *net) wideResNet(x value, st preActStyle, conv, bn, fc string, classes int64) value {
	x = n.conv(x, conv, 16, 3, 1, 1, false)
	for g, width := range []int64{160, 320, 640} {
		stride := int64(2)
		if g == 0 {
			stride = 1
		}
		x = n.preActStage(x, st, g+1, 5, width, stride)
	}
	x = n.pool(n.bnAct(x, bn))
	return n.linear(x, fc, classes)
}

// resNet50 is torchvision's resnet50 (ResNet v1.5: the stride sits on the
// bottleneck's 3×3 convolution): conv7×7/2 64, BN, ReLU, max pooling 3×3/2,
// stages of 3, 4, 6, 3 bottlenecks of widths 64, 128, 256, 512 (expansion
// 4), global average pooling and Linear 2048→classes. Convolutions are
// kaiming_normal_(fan_out, relu), BN weight 1 and bias 0, the Linear layer
// PyTorch's default; zero_init_residual is off.
func resNet50(n *net, x value, classes int64) value {
	x = n.conv(x, "conv1", 64, 7, 2, 3, false)
	x = n.maxPool(n.bnAct(x, "bn1"), 3, 2, 1)
	for g, count := range []int{3, 4, 6, 3} {
		width := int64(64) << g
		for i := range count {
			stride := int64(1)
			if g > 0 && i == 0 {
				stride = 2
			}
			x = n.bottleneck(x, fmt.Sprintf("layer%d.%d", g+1, i), width, stride)
		}
	}
	return n.linear(n.pool(x), "fc", classes)
}

// bottleneck appends torchvision's Bottleneck: 1×1, 3×3 (stride), 1×1
// convolutions to width, width and 4·width, each followed by BN, with ReLU
// after the first two and after the residual sum; the shortcut is
// downsample = 1×1 convolution + BN when width or resolution change.
func (n *net) bottleneck(x value, name string, width, stride int64) value {
	y := n.bnAct(n.conv(x, name+".conv1", width, 1, 1, 0, false), name+".bn1")
	y = n.bnAct(n.conv(y, name+".conv2", width, 3, stride, 1, false), name+".bn2")
	y = n.batchNorm(n.conv(y, name+".conv3", 4*width, 1, 1, 0, false), name+".bn3")
	short := x
	if stride != 1 || x.c != 4*width {
		short = n.batchNorm(n.conv(x, name+".downsample.0", 4*width, 1, stride, 0, false), name+".downsample.1")
	}
	return n.act(n.add(y, short, name))
}

// smallCNN is the MNIST network of Wong et al.'s fast_adversarial
// (MNIST/mnist_net.py): Conv 1→16 k4 s2 p1, ReLU, Conv 16→32 k4 s2 p1,
// ReLU, Flatten, Linear 1568→100, ReLU, Linear 100→classes, with PyTorch's
// default initialisation. Names are those of its nn.Sequential ("0.weight").
func smallCNN(n *net, x value, classes int64) value {
	x = n.act(n.conv(x, "0", 16, 4, 2, 1, true))
	x = n.act(n.conv(x, "2", 32, 4, 2, 1, true))
	x = n.act(n.linear(n.flatten(x), "5", 100))
	return n.linear(x, "7", classes)
}
