// dyad: tensors, autograd and kernels for CPU (naive, OpenMP) and CUDA. Include this one header.
#pragma once
#include "dyad/autograd.h"
#include "dyad/capture.h"
#include "dyad/data.h"
#include "dyad/device.h"
#include "dyad/dist.h"
#include "dyad/error.h"
#include "dyad/io.h"
#include "dyad/nn.h"
#include "dyad/ops.h"
#include "dyad/optim.h"
#include "dyad/tensor.h"
