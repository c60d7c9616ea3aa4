package dev.jkrun.hvf;

/** hv_return_t (Hypervisor/hv_error.h): a mach error in the hypervisor's subsystem, 0 for success. */
public final class HvReturn {
    private HvReturn() {}

    public static final int SUCCESS = 0, ERROR = 0xfae94001, BUSY = 0xfae94002, BAD_ARGUMENT = 0xfae94003,
            ILLEGAL_GUEST_STATE = 0xfae94004, NO_RESOURCES = 0xfae94005, NO_DEVICE = 0xfae94006, DENIED = 0xfae94007,
            UNSUPPORTED = 0xfae9400f;

    /** "HV_DENIED", or the number in hex for a code the header does not name. */
    public static String name(int code) {
        return switch (code) {
            case SUCCESS -> "HV_SUCCESS";
            case ERROR -> "HV_ERROR";
            case BUSY -> "HV_BUSY";
            case BAD_ARGUMENT -> "HV_BAD_ARGUMENT";
            case ILLEGAL_GUEST_STATE -> "HV_ILLEGAL_GUEST_STATE";
            case NO_RESOURCES -> "HV_NO_RESOURCES";
            case NO_DEVICE -> "HV_NO_DEVICE";
            case DENIED -> "HV_DENIED";
            case UNSUPPORTED -> "HV_UNSUPPORTED";
            default -> String.format("0x%08x", code);
        };
    }

    /** Returns normally for HV_SUCCESS; otherwise throws naming {@code call}. */
    public static void check(String call, int code) {
        if (code != SUCCESS) {
            throw new HvfException(call, code);
        }
    }
}
