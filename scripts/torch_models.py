"""PyTorch twins of dyad's models, for the development tools (scripts/make_golden.py and
bench/pytorch_train_step.py): the same structure and state_dict names as models::baseline_cnn and
models::resnet18_small, without torchvision."""
import torch
import torch.nn as nn


def baseline_cnn(num_classes=200, in_channels=3, image_size=64):
    """The reference CNN, as dyad's models::baseline_cnn builds it (same state_dict names)."""
    flat = 128 * (image_size // 8) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, num_classes))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same names: conv1, bn1, conv2, bn2, downsample.0/1). inplace: the
    ReLUs overwrite their input, as torchvision's do (less memory; the same values)."""

    def __init__(self, cin, cout, stride, inplace=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class ResNet18Small(nn.Module):
    """torchvision's resnet18 with a 3x3 stride-1 stem and no stem max-pool (dyad's resnet18_small), with
    torchvision's in-place ReLUs."""

    def __init__(self, num_classes=200, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        layers, cin = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, width, stride, inplace=True),
                                        BasicBlock(width, width, 1, inplace=True)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
