// Copyright Broom authors.
//
// broom.h: umbrella header; includes the whole public C++ API. Each header states the ownership,
// lifetime and thread-safety of what it defines.
#ifndef BROOM_BROOM_H_
#define BROOM_BROOM_H_

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/clone.h"
#include "broom/context.h"
#include "broom/memory.h"
#include "broom/message.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

#endif  // BROOM_BROOM_H_
