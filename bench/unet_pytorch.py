"""The Tessera U-Net written the way a Python user writes it with torch.nn: the baseline that
bench/compare_unet.py measures our C++ path against. Module structure, layer sizes and
initialisation match src/nn/src/UNet.cpp (same state-dict names). It compiles with
torch.jit.script and traces with torch.jit.trace and torch.onnx.export."""
import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, dims, cin, cout, norm):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv = conv(cin, cout, 3, padding=1)
        if norm == "batch":
            self.norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(cout)
        elif norm == "instance":
            self.norm = (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(cout, affine=True)
        else:
            self.norm = None

    def forward(self, x):
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return torch.relu_(x)


class UNet(nn.Module):
    def __init__(self, dims=2, in_channels=1, classes=2, base_features=16, depth=4, norm="batch"):
        super().__init__()
        self.dims = dims
        feats = [base_features << level for level in range(depth)]
        cin = in_channels
        self.enc = nn.ModuleList()
        for f in feats:
            self.enc.append(nn.Sequential(ConvBlock(dims, cin, f, norm), ConvBlock(dims, f, f, norm)))
            cin = f
        up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in range(depth - 2, -1, -1):
            f = feats[level]
            self.ups.append(up(2 * f, f, 2, stride=2))
            self.dec.append(nn.Sequential(ConvBlock(dims, 2 * f, f, norm), ConvBlock(dims, f, f, norm)))
        self.head = (nn.Conv2d if dims == 2 else nn.Conv3d)(feats[0], classes, 1)
        # A module (no parameters, so the state dict is unchanged) rather than a function picked
        # at run time: torch.jit.script cannot compile the latter.
        self.pool = (nn.MaxPool2d if dims == 2 else nn.MaxPool3d)(2)

    def forward(self, x):
        skips = []
        for level, enc in enumerate(self.enc):
            if level > 0:
                x = self.pool(x)
            x = enc(x)
            skips.append(x)
        for i, (up, dec) in enumerate(zip(self.ups, self.dec)):
            x = up(x)
            x = torch.cat([x, skips[-2 - i]], 1)
            x = dec(x)
        return self.head(x)
