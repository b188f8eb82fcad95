/* SPDX-License-Identifier: MIT */
/* state.c - the devserver's shared state, at the bottom of its files: the options set it
 * (main.c), the request handlers read and change it under S.mu; no file here calls another. */
#include "devserver.h"

dev_state S = {.mu = PTHREAD_MUTEX_INITIALIZER,
               .app_code = "demo-app",
               .app_secret = "demo-secret",
               .ttl = 15552000,
               .overlap = 60};

atomic_int dev_stopping = 0;
