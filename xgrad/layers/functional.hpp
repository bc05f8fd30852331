#pragma once
// The functional forms, in xgrad::functional: each layer's forward is one call of its form, and
// a custom module can call them directly on Variables (its own parameters included):
//   conv2d(x, weight, bias, Conv2dFuncOptions().stride(2).padding(2))
//   max_pool2d(x, MaxPool2dOptions(3).stride(2))
//   local_response_norm(x, LrnOptions(5).k(2.0))
//   linear(x, weight, bias)        dropout(x, DropoutMask{p, seed, call}, training)
//   relu(x)                        cross_entropy(logits, labels)
//   batch_norm(x, &running_mean, &running_var, weight, bias, training)
// Each is declared beside its layer; this header gathers them.
#include <xgrad/layers/batch_norm.hpp>
#include <xgrad/layers/conv2d.hpp>
#include <xgrad/layers/cross_entropy_loss.hpp>
#include <xgrad/layers/dropout.hpp>
#include <xgrad/layers/linear.hpp>
#include <xgrad/layers/local_response_norm.hpp>
#include <xgrad/layers/max_pool2d.hpp>
#include <xgrad/layers/relu.hpp>
