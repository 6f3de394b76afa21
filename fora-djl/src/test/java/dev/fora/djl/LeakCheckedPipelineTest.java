package dev.fora.djl;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** Tests on the shared pipeline {@link #p} that must leave no array under it: checked after every test. */
abstract class LeakCheckedPipelineTest {

    DiTPipeline p;
    private int before;

    @BeforeEach
    void countArrays() throws Exception {
        p = TestModels.pipeline();
        before = p.manager().getManagedArrays().size();
    }

    @AfterEach
    void nothingLeaked() {
        assertThat(p.manager().getManagedArrays()).as("arrays left under the model").hasSize(before);
    }
}
