// Explicit instantiation for the two scalar types every CPU kernel supports:
// float (training and inference) and double (gradient checks).
#pragma once
#define PN_INSTANTIATE_FLOAT_AND_DOUBLE(MACRO) \
  MACRO(float)                                 \
  MACRO(double)
