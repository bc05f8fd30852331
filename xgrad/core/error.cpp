#include <xgrad/core/error.hpp>
// Error is header-only; this file keeps one translation unit per header of core/.
