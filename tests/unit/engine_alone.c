/* Nothing to run: engine_alone exists to be linked with every object of
 * kopt_engine (link_whole) and no library but its own dependencies, so the
 * link and check_engine_alone.sh prove the engine needs only libc and libm. */
int main(void)
{
    return 0;
}
