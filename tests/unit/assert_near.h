/* assert_near(a, b, tol): a cmocka check that two numbers are within tol,
 * printing both on failure (the engine tests' numbers are worked out by
 * hand to a stated precision). Include after <cmocka.h>. */
#ifndef KOPT_TEST_ASSERT_NEAR_H
#define KOPT_TEST_ASSERT_NEAR_H

#include <math.h>

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            fail_msg("%s = %.9g, expected %.9g", #a, a_, b_);                                      \
    } while (0)

#endif
