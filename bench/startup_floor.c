/* SPDX-License-Identifier: MIT */
/* startup_floor.c - the floor of bench_startup: a C program that does nothing. */
int main(void)
{
    return 0;
}
